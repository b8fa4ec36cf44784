package sesh

import (
	"fmt"

	"github.com/gomodule/redigo/redis"
)

// checkPoolSize refuses a *redis.Pool whose MaxActive cannot hold what a
// Store with o keeps open: a connection for each lane (Options.Pipelines),
// one for the cache's tracking (Options.CacheSize), and one for an
// operation that runs alone. Below that, operations queue for a connection
// the Store itself holds, and each waits out a timeout with no error to
// say why. Other Pools, the Cluster adapter's included, are not checked.
func checkPoolSize(p Pool, o Options) error {
	rp, ok := p.(*redis.Pool)
	if !ok || rp.MaxActive <= 0 {
		return nil // MaxActive zero means no limit
	}
	lanes, cache := 0, 0
	if o.Pipelines != NoPipelining {
		lanes = o.Pipelines
	}
	if o.CacheSize > 0 {
		cache = 1
	}
	if need := lanes + cache + 1; rp.MaxActive < need {
		return fmt.Errorf("sesh: new: the Pool's MaxActive is %d, below the %d connections this Store holds: "+
			"%d for Pipelines, %d for the cache's tracking and 1 for an operation alone; raise MaxActive or lower Pipelines",
			rp.MaxActive, need, lanes, cache)
	}
	return nil
}
