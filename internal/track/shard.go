package track

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gomodule/redigo/redis"

	"github.com/seshkit/sesh/internal/wire"
)

// shardChannel picks, for a tracker on a Cluster master, a heartbeat
// channel of a hash slot that master serves. It tries channel names whose
// slot the router believes the master serves, and the master itself
// settles it: SSUBSCRIBE to a slot it does not serve gets MOVED.
type shardChannel struct {
	base  string // the cache's channel name, before the hash tag
	addr  string // the master's
	route Router
}

// errNotMaster says a Cluster node serves no slot.
var errNotMaster = errors.New("not a Cluster master")

// maxShardTries bounds the SSUBSCRIBEs a tracker tries on a connection.
const maxShardTries = 16

// subscribe subscribes c to a sharded channel of a slot the master serves,
// and returns the channel.
func (sc *shardChannel) subscribe(c Conn) (string, error) {
	// A replica takes SSUBSCRIBE for its master's slots too.
	role, err := redis.Values(c.Do("ROLE"))
	if err != nil {
		return "", err
	}
	if r, _ := role[0].([]byte); string(r) != "master" {
		return "", fmt.Errorf("%w: %s is a %s", errNotMaster, sc.addr, r)
	}
	tries := 0
	for i := 0; tries < maxShardTries; i++ {
		ch := sc.base + ":{" + strconv.Itoa(i) + "}"
		if i < 4*16384 && sc.route.Owner(sc.route.Slot(ch)) != sc.addr {
			continue
		}
		tries++
		_, err := c.Do("SSUBSCRIBE", ch)
		if err == nil {
			return ch, nil
		}
		e, ok := err.(redis.Error)
		if !ok {
			return "", err
		}
		rd, ok := wire.ParseRedirect(e)
		if !ok || rd.Ask {
			return "", fmt.Errorf("%w: %w", errNoClientTracking, e)
		}
		sc.route.Moved(rd.Slot, rd.Addr)
	}
	return "", fmt.Errorf("%w: %s serves no slot that SSUBSCRIBE found", errNotMaster, sc.addr)
}
