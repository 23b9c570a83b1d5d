package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

const (
	// SealStream is the stream seals are appended to.
	SealStream = "seals"
	// SealedEventType is the type of a seal event.
	SealedEventType = "LedgerSealed.v1"
	// MaxSealEvents bounds the events one seal covers, so that its list of
	// short digests (8 bytes each, base64 in JSON) stays far below the
	// store's event size limit.
	MaxSealEvents = 20_000
)

// Seal is the data of a LedgerSealed.v1 event: the signer's statement that
// the first Count events of the log hash to Hash, and which event had which
// digest since the previous seal.
type Seal struct {
	// Count is the number of events of the log the seal covers: events
	// 1..Count in global order.
	Count uint64 `json:"count"`
	// PrevCount is the previous seal's Count (0 for the first seal): the
	// digests cover events PrevCount+1..Count.
	PrevCount uint64 `json:"prev_count"`
	// Through is the position event Count had when it was sealed (for
	// people; Verify goes by counts, which survive a copy to another store).
	Through eventstore.Position `json:"through"`
	// Hash is H(Count), hex.
	Hash string `json:"hash"`
	// Digests are the first ShortDigestBytes of the digest of each event
	// PrevCount+1..Count, concatenated (base64 in JSON).
	Digests []byte `json:"digests"`
	// SealedAt is the signer's clock when it sealed.
	SealedAt time.Time `json:"sealed_at"`
	// KeyID names the signing key: hex of the first 8 bytes of the SHA-256
	// of the public key.
	KeyID string `json:"key_id"`
	// Signature is Ed25519 over SigningBytes.
	Signature []byte `json:"signature"`
}

// SigningBytes is what the signature covers: every field but the signature,
// in a fixed binary layout (so no JSON canonicalization is needed):
//
//	"ansinh.seal.v1\x00" count:8 prev_count:8 through.commit:8
//	through.prepare:8 hash:32 sha256(digests):32 sealed_at_unix_nanos:8
//	key_id:8
func (s *Seal) SigningBytes() ([]byte, error) {
	h, err := hex.DecodeString(s.Hash)
	if err != nil || len(h) != 32 {
		return nil, fmt.Errorf("seal: hash %q is not 32 bytes of hex", s.Hash)
	}
	k, err := hex.DecodeString(s.KeyID)
	if err != nil || len(k) != 8 {
		return nil, fmt.Errorf("seal: key ID %q is not 8 bytes of hex", s.KeyID)
	}
	dd := sha256.Sum256(s.Digests)
	b := make([]byte, 0, 16+8*4+32+32+8+8)
	b = append(b, "ansinh.seal.v1\x00"...)
	b = binary.BigEndian.AppendUint64(b, s.Count)
	b = binary.BigEndian.AppendUint64(b, s.PrevCount)
	b = binary.BigEndian.AppendUint64(b, s.Through.Commit)
	b = binary.BigEndian.AppendUint64(b, s.Through.Prepare)
	b = append(b, h...)
	b = append(b, dd[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(s.SealedAt.UnixNano()))
	return append(b, k...), nil
}

// sign fills KeyID and Signature.
func (s *Seal) sign(key ed25519.PrivateKey) error {
	s.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	msg, err := s.SigningBytes()
	if err != nil {
		return err
	}
	s.Signature = ed25519.Sign(key, msg)
	return nil
}

// check verifies the seal's shape and signature against the trusted keys.
func (s *Seal) check(keys map[string]ed25519.PublicKey) error {
	if s.Count <= s.PrevCount {
		return fmt.Errorf("covers events %d..%d, an empty or backwards range", s.PrevCount+1, s.Count)
	}
	if s.Count-s.PrevCount > MaxSealEvents {
		return fmt.Errorf("covers %d events, more than %d", s.Count-s.PrevCount, MaxSealEvents)
	}
	if uint64(len(s.Digests)) != (s.Count-s.PrevCount)*ShortDigestBytes {
		return fmt.Errorf("lists %d bytes of digests for %d events", len(s.Digests), s.Count-s.PrevCount)
	}
	pub, ok := keys[s.KeyID]
	if !ok {
		return fmt.Errorf("is signed by key %s, which is not trusted", s.KeyID)
	}
	msg, err := s.SigningBytes()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, s.Signature) {
		return errors.New("has an invalid signature")
	}
	return nil
}

// shortDigest is event i's (1-based, PrevCount < i <= Count) listed digest.
func (s *Seal) shortDigest(i uint64) []byte {
	o := (i - s.PrevCount - 1) * ShortDigestBytes
	return s.Digests[o : o+ShortDigestBytes]
}

// sealNamespace makes seal event IDs deterministic: the same seal (count
// and hash) always has the same ID, so re-sending it after a crash is an
// idempotent append, and two replicas sealing the same point collide
// instead of writing it twice.
var sealNamespace = uuid.MustParse("5b0f1b8e-7c57-4c47-9d0a-2f0c6a1e5e11")

func sealEventID(count uint64, hash string) uuid.UUID {
	return uuid.NewSHA1(sealNamespace, fmt.Appendf(nil, "%d:%s", count, hash))
}

// sealEvent builds the event that records s.
func sealEvent(s *Seal) (eventstore.EventData, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return eventstore.EventData{}, fmt.Errorf("seal: encode: %w", err)
	}
	// The metadata has the shape of domain.Metadata (who, when, why),
	// written by hand so that this package stays free of the domain.
	md, err := json.Marshal(map[string]any{
		"actor":          map[string]string{"user_id": "sealer", "role": "system"},
		"recorded_at":    s.SealedAt,
		"reason":         fmt.Sprintf("seal of events %d..%d", s.PrevCount+1, s.Count),
		"schema_version": 1,
	})
	if err != nil {
		return eventstore.EventData{}, fmt.Errorf("seal: encode metadata: %w", err)
	}
	return eventstore.EventData{ID: sealEventID(s.Count, s.Hash), Type: SealedEventType, Data: data, Metadata: md}, nil
}

// DecodeSeal reads a seal event's data.
func DecodeSeal(data []byte) (*Seal, error) {
	var s Seal
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("seal: decode: %w", err)
	}
	return &s, nil
}

// KeyID names a public key: hex of the first 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Key files in the data directory. The private key never leaves it; the
// public key is what auditors are given.
const (
	PrivateKeyFile = "seal-key.pem"
	PublicKeyFile  = "seal-key.pub.pem"
)

// LoadOrCreateKey reads the sealing key from dir, creating it (and the
// public key file beside it) on first start.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, PrivateKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("seal key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("seal key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("seal key %s: a %T, want Ed25519", path, k)
	}
	return priv, nil
}

func createKey(dir string) (ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("seal key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	// O_EXCL: two processes starting at once must not each write a key
	// and sign with different ones.
	f, err := os.OpenFile(filepath.Join(dir, PrivateKeyFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	pubPEM, err := EncodePublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, PublicKeyFile), pubPEM, 0o644); err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return priv, nil
}

// EncodePublicKey renders a public key as PEM (PKIX), the form auditors get.
func EncodePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKey reads a PEM public key written by EncodePublicKey.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("seal key: not a PEM public key")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("seal key: a %T, want Ed25519", k)
	}
	return pub, nil
}
