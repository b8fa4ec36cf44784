package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// orphans is what the end of a run left in Redis under its prefix.
type orphans struct {
	Live     int // token keys still live
	Orphans  int // ... whose token no Set or Rotate returned
	Indexed  int // ... of which a user's index names
	NoExpiry int // token keys with no expiry: a broken promise
}

// findOrphans scans the run's own prefix on every master, once, at the
// end: never on a hot path. A token key is an orphan when book does not
// know its token as returned by a Set or Rotate: a Set whose caller gave
// up, or whose reply was lost, that still ran.
func findOrphans(masters []string, prefix string, book *keyBook) (orphans, error) {
	var o orphans
	for _, addr := range masters {
		c, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(time.Second),
			redis.DialReadTimeout(10*time.Second), redis.DialWriteTimeout(time.Second))
		if err != nil {
			return o, err
		}
		err = scanNode(c, prefix, book, &o)
		c.Close()
		if err != nil {
			return o, fmt.Errorf("orphans on %s: %w", addr, err)
		}
	}
	return o, nil
}

func scanNode(c redis.Conn, prefix string, book *keyBook, o *orphans) error {
	var tokens, indexes []string
	for cursor := "0"; ; {
		v, err := redis.Values(c.Do("SCAN", cursor, "MATCH", prefix+":*", "COUNT", 1000))
		if err != nil {
			return err
		}
		keys, _ := redis.Strings(v[1], nil)
		for _, k := range keys {
			rest := k[len(prefix)+1:]
			switch {
			case strings.HasPrefix(rest, "u:"):
				indexes = append(indexes, k)
			case len(rest) == tokenLen+2 && rest[0] == '{':
				tokens = append(tokens, rest[1:tokenLen+1])
			}
		}
		if cursor, _ = redis.String(v[0], nil); cursor == "0" {
			break
		}
	}
	indexed := map[string]bool{}
	for _, idx := range indexes {
		ms, err := redis.Strings(c.Do("ZRANGEBYSCORE", idx, 0, "+inf"))
		if err != nil {
			return err
		}
		for _, m := range ms {
			indexed[m] = true
		}
	}
	ttls, err := pttls(c, prefix, tokens)
	if err != nil {
		return err
	}
	for i, m := range tokens {
		ttl := ttls[i]
		if ttl == -2 {
			continue // expired since the scan
		}
		o.Live++
		if ttl == -1 {
			o.NoExpiry++
		}
		mm, _ := parseMember([]byte(m))
		if k, ok := book.keys[mm]; !ok || !k.returned {
			o.Orphans++
			if indexed[m] {
				o.Indexed++
			}
		}
	}
	return nil
}

// pttls asks the PTTL of each token key, a thousand to a round trip.
func pttls(c redis.Conn, prefix string, members []string) ([]int64, error) {
	out := make([]int64, 0, len(members))
	for len(members) > 0 {
		n := min(len(members), 1000)
		for _, m := range members[:n] {
			c.Send("PTTL", prefix+":{"+m+"}")
		}
		if err := c.Flush(); err != nil {
			return nil, err
		}
		for range n {
			ttl, err := redis.Int64(c.Receive())
			if err != nil {
				return nil, err
			}
			out = append(out, ttl)
		}
		members = members[n:]
	}
	return out, nil
}
