package api

import (
	"container/list"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// RateLimitConfig is a token bucket per user: PerSecond requests a second on
// average, Burst at once.
type RateLimitConfig struct {
	PerSecond float64 // default 20
	Burst     int     // default 40
	// MaxUsers bounds the buckets held; past it the least recently seen
	// user's bucket is dropped (that user starts again with a full bucket).
	// Default 10,000.
	MaxUsers int
}

func (r RateLimitConfig) withDefaults() (RateLimitConfig, error) {
	if r.PerSecond == 0 {
		r.PerSecond = 20
	}
	if r.Burst == 0 {
		r.Burst = 40
	}
	if r.MaxUsers == 0 {
		r.MaxUsers = 10_000
	}
	switch {
	case r.PerSecond < 0 || math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0):
		return r, fmt.Errorf("api: RateLimit.PerSecond %v, want a positive number", r.PerSecond)
	case r.Burst < 1 || r.Burst > 1_000_000:
		return r, fmt.Errorf("api: RateLimit.Burst %d, want 1 to 1,000,000", r.Burst)
	case r.MaxUsers < 1 || r.MaxUsers > 10_000_000:
		return r, fmt.Errorf("api: RateLimit.MaxUsers %d, want 1 to 10,000,000", r.MaxUsers)
	}
	return r, nil
}

type rateLimiter struct {
	cfg     RateLimitConfig
	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // front: most recently used
}

type bucket struct {
	user   string
	tokens float64
	at     time.Time // when tokens was computed
}

func newRateLimiter(cfg RateLimitConfig) *rateLimiter {
	return &rateLimiter{cfg: cfg, buckets: make(map[string]*list.Element)}
}

// take spends one token of user's bucket at time now. When the bucket is
// empty it returns false and how long until a token is back.
func (l *rateLimiter) take(user string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if el, ok := l.buckets[user]; ok {
		l.lru.MoveToFront(el)
		b = el.Value.(*bucket)
		if elapsed := now.Sub(b.at); elapsed > 0 {
			b.tokens = math.Min(float64(l.cfg.Burst), b.tokens+elapsed.Seconds()*l.cfg.PerSecond)
			b.at = now
		}
	} else {
		if l.lru.Len() >= l.cfg.MaxUsers {
			oldest := l.lru.Back()
			l.lru.Remove(oldest)
			delete(l.buckets, oldest.Value.(*bucket).user)
		}
		b = &bucket{user: user, tokens: float64(l.cfg.Burst), at: now}
		l.buckets[user] = l.lru.PushFront(b)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.cfg.PerSecond * float64(time.Second))
	return false, wait
}

// rateLimit applies the caller's bucket; it runs after authentication.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ok, wait := s.limiter.take(ActorOf(c).UserID, s.now())
		if !ok {
			secs := int(math.Ceil(wait.Seconds()))
			if secs < 1 {
				secs = 1
			}
			return Problemf(http.StatusTooManyRequests, "rate_limited",
				"you sent more than %g requests a second (bursts of %d); retry after %d s",
				s.cfg.RateLimit.PerSecond, s.cfg.RateLimit.Burst, secs).
				WithHeader("Retry-After", strconv.Itoa(secs))
		}
		return next(c)
	}
}
