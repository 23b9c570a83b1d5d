package projections

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestWarmCacheReadsUpToItsLimit(t *testing.T) {
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.pdb.NewBatch()
	value := make([]byte, 1000)
	var total int64
	for i := range 3000 {
		k := fmt.Appendf(nil, "k%05d", i)
		if err := b.Set(k, value, nil); err != nil {
			t.Fatal(err)
		}
		total += int64(len(k) + len(value))
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n, err := db.WarmCache(ctx, 1<<40); err != nil || n != total {
		t.Fatalf("read %d bytes (%v), want all %d", n, err, total)
	}
	if n, err := db.WarmCache(ctx, 10_000); err != nil || n < 10_000 || n > 10_000+1006 {
		t.Fatalf("read %d bytes (%v) with a limit of 10,000", n, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := db.WarmCache(cancelled, 1<<40); !errors.Is(err, context.Canceled) || n >= total {
		t.Fatalf("cancelled: read %d bytes, err %v", n, err)
	}
}
