package projections

import (
	"context"
	"fmt"
)

// WarmCache reads the database from the first key on, up to limit bytes of
// keys and values, so that Pebble's block cache holds the read models
// before the first queries ask for them. After a restart the cache is
// empty and every query on a person not yet asked about read and
// decompressed its blocks from the files: at Hanoi's scale a fifth of a
// balance query's CPU until the cache had seen everyone. It stops early
// when ctx ends and returns the bytes it read. Reads share the block cache
// with queries, so a limit above the cache's size only evicts what it
// loaded first.
func (db *DB) WarmCache(ctx context.Context, limit int64) (int64, error) {
	it, err := db.pdb.NewIter(nil)
	if err != nil {
		return 0, fmt.Errorf("projections: warm cache: %w", err)
	}
	var n int64
	for valid := it.First(); valid && n < limit; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return n, fmt.Errorf("projections: warm cache: %w", err)
		}
		n += int64(len(it.Key()) + len(v))
		if n&0xfffff < int64(len(it.Key())+len(v)) { // about every MiB
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return n, err
			}
		}
	}
	if err := it.Close(); err != nil {
		return n, fmt.Errorf("projections: warm cache: %w", err)
	}
	return n, nil
}
