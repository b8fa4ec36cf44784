package bench

import (
	"context"
	"fmt"

	"github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshcluster"
)

// ClusterContender is one library, or one configuration of it, under test
// on Redis Cluster. Its fields mean what Contender's do.
type ClusterContender struct {
	Name, Mint, Lookup, Config string
	Cached                     bool
	// Open returns a Client whose keys all start with prefix + ":".
	Open func(ctx context.Context, c *Cluster, prefix string) (Client, error)
}

// ClusterContenders lists every contender of the Cluster mode, baseline
// first.
var ClusterContenders = []ClusterContender{
	{
		Name:   "redisc",
		Mint:   "SET k v NX PX",
		Lookup: "GET",
		Config: fmt.Sprintf("redisc v1.4.0, redisc.RetryConn(cluster.Get(), 3, 20ms) and conn.Do per operation, on the shared redisc.Cluster (a redigo pool per node, MaxIdle %d). **The baseline**: the plain per-operation model sesh builds on", PoolIdle),
		Open:   openRedisc,
	},
	{
		Name:   "go-redis",
		Mint:   "SET k v EX NX (SetNX)",
		Lookup: "GET",
		Config: fmt.Sprintf("go-redis/v9 ClusterClient on the seeds, PoolSize %d per node, other options at their defaults", PoolIdle),
		Open:   openGoRedisCluster,
	},
	{
		Name:   "rueidis",
		Mint:   "SET k v NX PX",
		Lookup: "GET",
		Config: "rueidis.NewClient with the seeds as InitAddress, which detects the cluster; auto-pipelining per node",
		Open:   openRueidisCluster(false),
	},
	{
		Name:   "rueidis+cache",
		Mint:   "SET k v NX PX",
		Lookup: fmt.Sprintf("DoCache GET, TTL %v", CacheTTL),
		Config: "as rueidis, lookups through its client-side cache (CLIENT TRACKING OPTIN on each node)",
		Cached: true,
		Open:   openRueidisCluster(true),
	},
	{
		Name:   "sesh",
		Mint:   "SET k v NX PX (Set)",
		Lookup: "GET (Get)",
		Config: "sesh.New(seshcluster.New(cluster)) on the shared redisc.Cluster, TTL 1h, Pipelines at its default (auto-pipelining on)",
		Open:   openSeshCluster(0),
	},
	{
		Name:   "sesh-nobatch",
		Mint:   "SET k v NX PX (Set)",
		Lookup: "GET (Get)",
		Config: "as sesh, with Pipelines: sesh.NoPipelining (batching off)",
		Open:   openSeshCluster(sesh.NoPipelining),
	},
	{
		Name:   "sesh+cache",
		Mint:   "SET k v NX PX (Set)",
		Lookup: "Get, cached",
		Config: fmt.Sprintf("as sesh, with CacheSize %d, CacheMaxStale at its default (1s); CLIENT TRACKING BCAST on the prefix at each master, heartbeats by SPUBLISH", CacheSize),
		Cached: true,
		Open:   openSeshClusterCache,
	},
}

func openSeshClusterCache(_ context.Context, c *Cluster, prefix string) (Client, error) {
	st, err := sesh.New(seshcluster.New(c.Cluster), sesh.Options{Prefix: prefix, TTL: TTL, CacheSize: CacheSize})
	if err != nil {
		return nil, err
	}
	return seshClient{st: st, close: st.Close}, nil
}

// openRedisc is raw redisc as its README sets it up: a RetryConn per
// operation, which follows MOVED and ASK. It takes no context.
func openRedisc(_ context.Context, c *Cluster, prefix string) (Client, error) {
	get := func(context.Context) (redis.Conn, error) { return c.conn() }
	return &redigoClient{get: get, prefix: prefix + ":"}, nil
}

func openGoRedisCluster(ctx context.Context, c *Cluster, prefix string) (Client, error) {
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs, PoolSize: PoolIdle})
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, err
	}
	return &goRedisClient{rdb, prefix + ":"}, nil
}

func openRueidisCluster(cached bool) func(context.Context, *Cluster, string) (Client, error) {
	return func(_ context.Context, c *Cluster, prefix string) (Client, error) {
		cl, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: c.Addrs})
		if err != nil {
			return nil, err
		}
		return &rueidisClient{cl, prefix + ":", cached}, nil
	}
}

func openSeshCluster(pipelines int) func(context.Context, *Cluster, string) (Client, error) {
	return func(_ context.Context, c *Cluster, prefix string) (Client, error) {
		return newSeshClient(seshcluster.New(c.Cluster), prefix, pipelines)
	}
}
