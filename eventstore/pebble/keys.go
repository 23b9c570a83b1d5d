package pebble

import (
	"encoding/binary"

	"github.com/google/uuid"
)

// Key layout (see doc.go). Every key starts with a one-letter family and a
// '/', so the families are disjoint ranges. '/' cannot occur in a stream name
// (eventstore.ValidateStreamName forbids it), so "s/<stream>/" is a prefix of
// exactly one stream's keys and never of another stream's.
const (
	familyLog    = 'g' // g/<seq:8> -> encoded event
	familyStream = 's' // s/<stream>/<first rev:8> -> first seq:8, count:8 (one run per append)
	familyHead   = 'h' // h/<stream> -> last revision:8
	familyID     = 'i' // i/<stream>/<event id:16> -> revision:8
	familyMeta   = 'm' // m/head -> last seq:8
	sep          = '/'
)

var metaHeadKey = []byte("m/head")

// logKeyLen is the length of a g/<seq> key.
const logKeyLen = 2 + 8

func appendLogKey(dst []byte, seq uint64) []byte {
	dst = append(dst, familyLog, sep)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// logBounds are the bounds of the whole global log.
var (
	logLower = []byte{familyLog, sep}
	logUpper = []byte{familyLog, sep + 1}
)

func logKeySeq(key []byte) (uint64, bool) {
	if len(key) != logKeyLen || key[0] != familyLog || key[1] != sep {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[2:]), true
}

// appendStreamPrefix appends "s/<stream>/".
func appendStreamPrefix(dst []byte, stream string) []byte {
	dst = append(dst, familyStream, sep)
	dst = append(dst, stream...)
	return append(dst, sep)
}

func appendStreamKey(dst []byte, stream string, rev uint64) []byte {
	dst = appendStreamPrefix(dst, stream)
	return binary.BigEndian.AppendUint64(dst, rev)
}

// streamBounds returns [lower, upper) covering every key of one stream.
func streamBounds(stream string) (lower, upper []byte) {
	lower = appendStreamPrefix(make([]byte, 0, len(stream)+3+8), stream)
	upper = append([]byte(nil), lower...)
	upper[len(upper)-1] = sep + 1
	return lower, upper
}

// streamRun is one entry of the stream index: the events of one append,
// which have consecutive revisions and consecutive seqs.
type streamRun struct {
	firstRev, firstSeq, count uint64
}

func (r streamRun) lastRev() uint64 { return r.firstRev + r.count - 1 }

// seqOf is the seq of revision rev, which must lie in the run.
func (r streamRun) seqOf(rev uint64) uint64 { return r.firstSeq + (rev - r.firstRev) }

func appendRunValue(dst []byte, r streamRun) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.firstSeq)
	return binary.BigEndian.AppendUint64(dst, r.count)
}

// decodeRun reads a stream index entry; prefixLen is len("s/<stream>/").
func decodeRun(key, value []byte, prefixLen int) (streamRun, bool) {
	if len(key) != prefixLen+8 || len(value) != 16 {
		return streamRun{}, false
	}
	r := streamRun{
		firstRev: binary.BigEndian.Uint64(key[prefixLen:]),
		firstSeq: binary.BigEndian.Uint64(value[:8]),
		count:    binary.BigEndian.Uint64(value[8:]),
	}
	// A run is never empty and never wraps: checked here so that readers
	// can do arithmetic on it without further care.
	if r.count == 0 || r.firstSeq == 0 || r.firstRev+r.count < r.firstRev || r.firstSeq+r.count < r.firstSeq {
		return streamRun{}, false
	}
	return r, true
}

func appendHeadKey(dst []byte, stream string) []byte {
	dst = append(dst, familyHead, sep)
	return append(dst, stream...)
}

func appendIDKey(dst []byte, stream string, id uuid.UUID) []byte {
	dst = append(dst, familyID, sep)
	dst = append(dst, stream...)
	dst = append(dst, sep)
	return append(dst, id[:]...)
}

func appendUint64(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, v)
}

func decodeUint64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
