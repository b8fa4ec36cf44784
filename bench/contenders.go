package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/seshkit/sesh"
)

// Contenders lists every contender, baseline first, in the order tables
// and the chart show them.
var Contenders = []Contender{
	{
		Name:   "redigo",
		Mint:   "SET k v NX PX",
		Lookup: "GET",
		Config: fmt.Sprintf("redigo v1.9.3, conn.Do on the shared sesh.NewPool pool (MaxIdle %d, MaxActive 1024)", PoolIdle),
		Open:   openRedigo(false),
	},
	{
		Name:   "redigo+ctx",
		Mint:   "SET k v NX PX",
		Lookup: "GET",
		Config: "as redigo, but through redis.DoContext, as sesh calls it: a diagnostic, not a peer",
		Open:   openRedigo(true),
	},
	{
		Name:   "go-redis",
		Mint:   "SET k v EX NX (SetNX)",
		Lookup: "GET",
		Config: fmt.Sprintf("go-redis/v9 defaults (RESP3) from ParseURL, PoolSize %d", PoolIdle),
		Open:   openGoRedis,
	},
	{
		Name:   "rueidis",
		Mint:   "SET k v NX PX",
		Lookup: "GET",
		Config: "rueidis defaults from ParseURL: auto-pipelining over 4 connections (PipelineMultiplex 2)",
		Open:   openRueidis(false),
	},
	{
		Name:   "rueidis+cache",
		Mint:   "SET k v NX PX",
		Lookup: fmt.Sprintf("DoCache GET, TTL %v", CacheTTL),
		Config: "rueidis defaults from ParseURL: CLIENT TRACKING OPTIN, 128 MiB cache per connection",
		Cached: true,
		Open:   openRueidis(true),
	},
	{
		Name:   "scs",
		Mint:   "MULTI SET PEXPIREAT EXEC (Commit)",
		Lookup: "GET (Find)",
		Config: "scs/redisstore on the shared redigo pool; tokens drawn as scs draws them",
		Open:   openSCS,
	},
	{
		Name:   "sesh",
		Mint:   "SET k v NX PX (Set)",
		Lookup: "GET (Get)",
		Config: "sesh.New on the shared redigo pool, TTL 1h, Pipelines at its default (auto-pipelining on)",
		Open:   openSesh(0),
	},
	{
		Name:   "sesh-nobatch",
		Mint:   "SET k v NX PX (Set)",
		Lookup: "GET (Get)",
		Config: "sesh.New on the shared redigo pool, TTL 1h, Pipelines: sesh.NoPipelining (batching off: one pool connection per operation)",
		Open:   openSesh(sesh.NoPipelining),
	},
	{
		Name:   "sesh+crypt",
		Mint:   "SET k v NX PX (Set)",
		Lookup: "GET (Get)",
		Config: "sesh.NewCrypt (AES-256-GCM) over the sesh Store; 49-byte stored value",
		Open:   openCrypt,
	},
	{
		Name:   "sesh+cache",
		Mint:   "SET k v NX PX (Set)",
		Lookup: "Get, cached",
		Config: fmt.Sprintf("sesh.New on the shared redigo pool with CacheSize %d, CacheMaxStale at its default (1s); CLIENT TRACKING BCAST on the prefix", CacheSize),
		Cached: true,
		Open:   openSeshCache,
	},
}

// newToken draws a token as sesh and scs do: 32 bytes from crypto/rand in
// unpadded base64url.
func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var errCollision = errors.New("bench: fresh token collided with a live one")

// redigo: the baseline, the commands sesh sends, on the same pool. With
// ctx it calls DoContext, which sesh uses so that a cancelled context ends
// a blocked call, and which costs a goroutine per command.
type redigoClient struct {
	get    func(context.Context) (redis.Conn, error)
	prefix string
	ctx    bool
}

func openRedigo(ctx bool) func(context.Context, *Redis, string) (Client, error) {
	return func(_ context.Context, r *Redis, prefix string) (Client, error) {
		return &redigoClient{r.Pool.GetContext, prefix + ":", ctx}, nil
	}
}

func (c *redigoClient) do(ctx context.Context, conn redis.Conn, cmd string, args ...any) (any, error) {
	if c.ctx {
		return redis.DoContext(conn, ctx, cmd, args...)
	}
	return conn.Do(cmd, args...)
}

func (c *redigoClient) Mint(ctx context.Context, userID string) (string, error) {
	tok := newToken()
	conn, err := c.get(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	v, err := c.do(ctx, conn, "SET", c.prefix+tok, userID, "NX", "PX", TTL.Milliseconds())
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", errCollision
	}
	return tok, nil
}

func (c *redigoClient) Lookup(ctx context.Context, token string) (string, error) {
	conn, err := c.get(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	v, err := redis.String(c.do(ctx, conn, "GET", c.prefix+token))
	if errors.Is(err, redis.ErrNil) {
		return "", ErrNotFound
	}
	return v, err
}

func (c *redigoClient) Close() error { return nil }

// go-redis, on one server or a cluster.
type goRedisClient struct {
	rdb    goredis.UniversalClient
	prefix string
}

func openGoRedis(ctx context.Context, r *Redis, prefix string) (Client, error) {
	opt, err := goredis.ParseURL(r.URL)
	if err != nil {
		return nil, err
	}
	opt.PoolSize = PoolIdle
	rdb := goredis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, err
	}
	return &goRedisClient{rdb, prefix + ":"}, nil
}

func (c *goRedisClient) Mint(ctx context.Context, userID string) (string, error) {
	tok := newToken()
	ok, err := c.rdb.SetNX(ctx, c.prefix+tok, userID, TTL).Result()
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errCollision
	}
	return tok, nil
}

func (c *goRedisClient) Lookup(ctx context.Context, token string) (string, error) {
	v, err := c.rdb.Get(ctx, c.prefix+token).Result()
	if errors.Is(err, goredis.Nil) {
		return "", ErrNotFound
	}
	return v, err
}

func (c *goRedisClient) Close() error { return c.rdb.Close() }

// rueidis, plain or through its client-side cache.
type rueidisClient struct {
	cl     rueidis.Client
	prefix string
	cached bool
}

func openRueidis(cached bool) func(context.Context, *Redis, string) (Client, error) {
	return func(_ context.Context, r *Redis, prefix string) (Client, error) {
		opt, err := rueidis.ParseURL(r.URL)
		if err != nil {
			return nil, err
		}
		cl, err := rueidis.NewClient(opt)
		if err != nil {
			return nil, err
		}
		return &rueidisClient{cl, prefix + ":", cached}, nil
	}
}

func (c *rueidisClient) Mint(ctx context.Context, userID string) (string, error) {
	tok := newToken()
	err := c.cl.Do(ctx, c.cl.B().Set().Key(c.prefix+tok).Value(userID).Nx().Px(TTL).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return "", errCollision
	}
	if err != nil {
		return "", err
	}
	return tok, nil
}

func (c *rueidisClient) Lookup(ctx context.Context, token string) (string, error) {
	var r rueidis.RedisResult
	if c.cached {
		r = c.cl.DoCache(ctx, c.cl.B().Get().Key(c.prefix+token).Cache(), CacheTTL)
	} else {
		r = c.cl.Do(ctx, c.cl.B().Get().Key(c.prefix+token).Build())
	}
	v, err := r.ToString()
	if rueidis.IsRedisNil(err) {
		return "", ErrNotFound
	}
	return v, err
}

func (c *rueidisClient) Close() error {
	c.cl.Close()
	return nil
}

// scs: its Redis store, driven directly; the SessionManager above it (gob
// encoding, cookies) is not measured.
type scsClient struct {
	st *redisstore.RedisStore
}

func openSCS(_ context.Context, r *Redis, prefix string) (Client, error) {
	return scsClient{redisstore.NewWithPrefix(r.Pool, prefix+":")}, nil
}

func (c scsClient) Mint(_ context.Context, userID string) (string, error) {
	tok := newToken()
	if err := c.st.Commit(tok, []byte(userID), time.Now().Add(TTL)); err != nil {
		return "", err
	}
	return tok, nil
}

func (c scsClient) Lookup(_ context.Context, token string) (string, error) {
	b, ok, err := c.st.Find(token)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", ErrNotFound
	}
	return string(b), nil
}

func (scsClient) Close() error { return nil }

// sesh, plain or with Crypt: anything with Set and Get.
type seshClient struct {
	st interface {
		Set(ctx context.Context, userID string) (string, error)
		Get(ctx context.Context, token string) (string, error)
	}
	close func() error
}

// openSesh opens a sesh Store with Options.Pipelines set to pipelines: 0
// for the default (auto-pipelining on), or sesh.NoPipelining.
func openSesh(pipelines int) func(context.Context, *Redis, string) (Client, error) {
	return func(_ context.Context, r *Redis, prefix string) (Client, error) {
		return newSeshClient(r.Pool, prefix, pipelines)
	}
}

func newSeshClient(p sesh.Pool, prefix string, pipelines int) (Client, error) {
	st, err := sesh.New(p, sesh.Options{Prefix: prefix, TTL: TTL, Pipelines: pipelines})
	if err != nil {
		return nil, err
	}
	return seshClient{st: st, close: st.Close}, nil
}

// openSeshCache opens a sesh Store with its client-side cache: one more
// connection of the shared pool carries CLIENT TRACKING's invalidations,
// and Close releases it.
func openSeshCache(_ context.Context, r *Redis, prefix string) (Client, error) {
	st, err := sesh.New(r.Pool, sesh.Options{Prefix: prefix, TTL: TTL, CacheSize: CacheSize})
	if err != nil {
		return nil, err
	}
	return seshClient{st: st, close: st.Close}, nil
}

func openCrypt(_ context.Context, r *Redis, prefix string) (Client, error) {
	st, err := sesh.New(r.Pool, sesh.Options{Prefix: prefix, TTL: TTL})
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	cr, err := sesh.NewCrypt(st, key)
	if err != nil {
		return nil, err
	}
	return seshClient{st: cr}, nil
}

func (c seshClient) Mint(ctx context.Context, userID string) (string, error) {
	return c.st.Set(ctx, userID)
}

func (c seshClient) Lookup(ctx context.Context, token string) (string, error) {
	v, err := c.st.Get(ctx, token)
	if errors.Is(err, sesh.ErrNotFound) {
		return "", ErrNotFound
	}
	return v, err
}

func (c seshClient) Close() error {
	if c.close == nil {
		return nil
	}
	return c.close()
}
