package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/rueidis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshcluster"
)

// ProbeTTL is the expiry of every token a Prober mints, in case a run is
// killed before it ends them.
const ProbeTTL = 10 * time.Minute

// ProbeCacheSize is the CacheSize of sesh's caching Store A: it holds one
// token at a time.
const ProbeCacheSize = 1000

// probeUserID is the user ID every probe token is minted for.
const probeUserID = "user:propagate"

// CacheRefusedError is returned by OpenSeshProber and OpenSeshClusterProber
// when sesh.New refuses the caching Store, as sesh does on Redis Cluster
// until its cache works there.
type CacheRefusedError struct{ Err error }

func (e *CacheRefusedError) Error() string { return "sesh refused its cache: " + e.Err.Error() }

func (e *CacheRefusedError) Unwrap() error { return e.Err }

// OpenSeshProber opens two sesh Stores on the Redis at url, each on a pool
// of its own, with keys under prefix: A with CacheSize, B without.
func OpenSeshProber(url, prefix string) (Prober, error) {
	pa, err := sesh.NewPool(url)
	if err != nil {
		return nil, err
	}
	pb, err := sesh.NewPool(url)
	if err != nil {
		pa.Close()
		return nil, err
	}
	p, err := newSeshProber(pa, pb, prefix)
	if err != nil {
		pa.Close()
		pb.Close()
		return nil, err
	}
	p.closers = append(p.closers, pa.Close, pb.Close)
	return p, nil
}

// OpenSeshClusterProber opens two sesh Stores through seshcluster, each on
// a redisc.Cluster of its own seeded by addrs, with keys under prefix: A
// with CacheSize, B without. It returns a *CacheRefusedError when sesh.New
// refuses A's cache.
func OpenSeshClusterProber(ctx context.Context, addrs []string, prefix string) (Prober, error) {
	ca, err := DialCluster(ctx, addrs)
	if err != nil {
		return nil, err
	}
	cb, err := DialCluster(ctx, addrs)
	if err != nil {
		ca.Close()
		return nil, err
	}
	p, err := newSeshProber(seshcluster.New(ca.Cluster), seshcluster.New(cb.Cluster), prefix)
	if err != nil {
		ca.Close()
		cb.Close()
		return nil, err
	}
	p.closers = append(p.closers, ca.Close, cb.Close)
	return p, nil
}

// seshProber is sesh's pair: A caches, B ends. closers run after both
// Stores are closed, in order.
type seshProber struct {
	a, b    *sesh.Store
	closers []func() error
}

func newSeshProber(pa, pb sesh.Pool, prefix string) (*seshProber, error) {
	b, err := sesh.New(pb, sesh.Options{Prefix: prefix, TTL: ProbeTTL})
	if err != nil {
		return nil, err
	}
	a, err := sesh.New(pa, sesh.Options{Prefix: prefix, TTL: ProbeTTL, CacheSize: ProbeCacheSize})
	if err != nil {
		b.Close()
		return nil, &CacheRefusedError{err}
	}
	return &seshProber{a: a, b: b}, nil
}

func (p *seshProber) Mint(ctx context.Context) (string, error) {
	return p.b.Set(ctx, probeUserID)
}

// Warm reads until a Get is counted as a cache hit. The first Get fills
// the cache, unless the invalidation of B's Set arrives during its round
// trip (tracking is BCAST on the prefix, so new keys send one too): then
// the fill is dropped and a later Get fills it.
func (p *seshProber) Warm(ctx context.Context, tok string) error {
	for range 100 {
		hits := p.a.Stats().Cache.Hits
		v, err := p.a.Get(ctx, tok)
		if err != nil {
			return err
		}
		if v != probeUserID {
			return fmt.Errorf("Get = %q, want %q", v, probeUserID)
		}
		if p.a.Stats().Cache.Hits > hits {
			return nil
		}
		time.Sleep(100 * time.Microsecond)
	}
	return fmt.Errorf("100 Gets and none was served from the cache (%+v)", p.a.Stats().Cache)
}

func (p *seshProber) End(ctx context.Context, tok string) error { return p.b.Die(ctx, tok) }

func (p *seshProber) Cached(ctx context.Context, tok string) (bool, error) {
	return seshFound(p.a.Get(ctx, tok))
}

func (p *seshProber) Uncached(ctx context.Context, tok string) (bool, error) {
	return seshFound(p.b.Get(ctx, tok))
}

func seshFound(_ string, err error) (bool, error) {
	if errors.Is(err, sesh.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (p *seshProber) Close() error {
	errs := []error{p.a.Close(), p.b.Close()}
	for _, c := range p.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// OpenRueidisProber opens two rueidis clients on the Redis at url, with
// keys under prefix + ":": A with its client-side cache (CLIENT TRACKING
// OPTIN, reads through DoCache), B with DisableCache.
func OpenRueidisProber(url, prefix string) (Prober, error) {
	oa, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	ob := oa
	ob.DisableCache = true
	return newRueidisProber(oa, ob, prefix)
}

// OpenRueidisClusterProber is OpenRueidisProber on the Redis Cluster that
// addrs seed: rueidis detects the cluster from InitAddress.
func OpenRueidisClusterProber(addrs []string, prefix string) (Prober, error) {
	return newRueidisProber(
		rueidis.ClientOption{InitAddress: addrs},
		rueidis.ClientOption{InitAddress: addrs, DisableCache: true},
		prefix)
}

type rueidisProber struct {
	a, b   rueidis.Client
	prefix string
}

func newRueidisProber(oa, ob rueidis.ClientOption, prefix string) (*rueidisProber, error) {
	a, err := rueidis.NewClient(oa)
	if err != nil {
		return nil, err
	}
	b, err := rueidis.NewClient(ob)
	if err != nil {
		a.Close()
		return nil, err
	}
	return &rueidisProber{a: a, b: b, prefix: prefix + ":"}, nil
}

func (p *rueidisProber) Mint(ctx context.Context) (string, error) {
	tok := newToken()
	err := p.b.Do(ctx, p.b.B().Set().Key(p.prefix+tok).Value(probeUserID).Nx().Px(ProbeTTL).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return "", errCollision
	}
	return tok, err
}

// Warm reads through DoCache until a reply says it came from the cache.
func (p *rueidisProber) Warm(ctx context.Context, tok string) error {
	for range 100 {
		r := p.a.DoCache(ctx, p.a.B().Get().Key(p.prefix+tok).Cache(), CacheTTL)
		v, err := r.ToString()
		if err != nil {
			return err
		}
		if v != probeUserID {
			return fmt.Errorf("DoCache GET = %q, want %q", v, probeUserID)
		}
		if r.IsCacheHit() {
			return nil
		}
		time.Sleep(100 * time.Microsecond)
	}
	return errors.New("100 DoCache GETs and none was served from the cache")
}

func (p *rueidisProber) End(ctx context.Context, tok string) error {
	return p.b.Do(ctx, p.b.B().Del().Key(p.prefix+tok).Build()).Error()
}

func (p *rueidisProber) Cached(ctx context.Context, tok string) (bool, error) {
	return rueidisFound(p.a.DoCache(ctx, p.a.B().Get().Key(p.prefix+tok).Cache(), CacheTTL))
}

func (p *rueidisProber) Uncached(ctx context.Context, tok string) (bool, error) {
	return rueidisFound(p.b.Do(ctx, p.b.B().Get().Key(p.prefix+tok).Build()))
}

func rueidisFound(r rueidis.RedisResult) (bool, error) {
	err := r.Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	return err == nil, err
}

func (p *rueidisProber) Close() error {
	p.a.Close()
	p.b.Close()
	return nil
}
