// Command memory measures the Redis memory a live sesh session costs,
// against the floor of one raw SET key userID PX ttl of the same key shape,
// and prints the table, floor included, in one run.
//
// Usage, from bench/:
//
//	go run ./cmd/memory -redis redis://127.0.0.1:6379/15
//
// For each user ID length (-ids) it writes -n sessions in each layout under
// a prefix unique to the run, -per-user sessions per user, and reports two
// figures per session: the sum of MEMORY USAGE over every key written (the
// index included), and the delta of INFO memory's used_memory. MEMORY USAGE
// counts only the run's own keys, so it holds on a server others use too;
// used_memory also counts the dictionaries' growth and the expires entry,
// but anything else the server does meanwhile. Each figure has its ratio to
// the floor's: a Crypt row's floor is a raw SET whose value is as
// long as the sealed one. Keys are removed with SCAN and UNLINK after each
// row; nothing is flushed.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// row is one layout to measure.
type row struct {
	name  string
	o     sesh.Options
	crypt bool
	floor bool
}

func main() {
	url := flag.String("redis", "redis://127.0.0.1:6379/15", "Redis `URL`")
	n := flag.Int("n", 50000, "sessions per row")
	perUser := flag.Int("per-user", 10, "sessions per user")
	ids := flag.String("ids", "11,100", "user ID lengths in bytes, comma-separated")
	conc := flag.Int("c", 32, "concurrent writers")
	flag.Parse()
	p, err := sesh.NewPool(*url)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	const ttl = time.Hour
	rows := []row{
		{name: "floor: SET key userID PX ttl", floor: true},
		{name: "sesh, TTL only", o: sesh.Options{TTL: ttl}},
		{name: "sesh, TTL + MaxAge", o: sesh.Options{TTL: ttl, MaxAge: 12 * time.Hour}},
		{name: "sesh, TrackUsers", o: sesh.Options{TTL: ttl, TrackUsers: true}},
		{name: "sesh, TTL + MaxAge + TrackUsers", o: sesh.Options{TTL: ttl, MaxAge: 12 * time.Hour, TrackUsers: true}},
		{name: "floor, value as long as sealed", floor: true, crypt: true},
		{name: "Crypt, TTL only", o: sesh.Options{TTL: ttl}, crypt: true},
		{name: "Crypt, TTL + MaxAge", o: sesh.Options{TTL: ttl, MaxAge: 12 * time.Hour}, crypt: true},
		{name: "Crypt, TrackUsers", o: sesh.Options{TTL: ttl, TrackUsers: true}, crypt: true},
		{name: "Crypt, TTL + MaxAge + TrackUsers", o: sesh.Options{TTL: ttl, MaxAge: 12 * time.Hour, TrackUsers: true}, crypt: true},
	}
	fmt.Printf("%d sessions a row, %d a user, on %s; B = bytes per session\n\n", *n, *perUser, *url)
	for _, f := range strings.Split(*ids, ",") {
		idLen, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || idLen < 1 {
			log.Fatalf("-ids: %q is not a length", f)
		}
		fmt.Printf("user IDs of %d bytes\n\n| layout | MEMORY USAGE B | × floor | used_memory B | × floor |\n|---|--:|--:|--:|--:|\n", idLen)
		var floor, floorUsed [2]float64
		for _, r := range rows {
			usage, used, err := measure(p, r, *n, *perUser, idLen, *conc)
			if err != nil {
				log.Fatalf("%s: %v", r.name, err)
			}
			if r.floor {
				floor[b2i(r.crypt)], floorUsed[b2i(r.crypt)] = usage, used
			}
			fmt.Printf("| %s | %.0f | %.2f | %.0f | %.2f |\n", r.name, usage, usage/floor[b2i(r.crypt)], used, used/floorUsed[b2i(r.crypt)])
		}
		fmt.Println()
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// measure writes n sessions of r and returns the bytes per session by
// MEMORY USAGE and by used_memory.
func measure(p *redis.Pool, r row, n, perUser, idLen, conc int) (usage, used float64, err error) {
	var b [6]byte
	rand.Read(b[:])
	prefix := "seshmem-" + hex.EncodeToString(b[:])
	write, err := writer(p, r, prefix, idLen)
	if err != nil {
		return 0, 0, err
	}
	before, err := usedMemory(p)
	if err != nil {
		return 0, 0, err
	}
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += conc {
				if err := write(userID(i/perUser, idLen)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	after, err := usedMemory(p)
	if err != nil {
		return 0, 0, err
	}
	total, keys, err := usageAndUnlink(p, prefix)
	if err != nil {
		return 0, 0, err
	}
	if keys < n {
		return 0, 0, fmt.Errorf("found %d keys for %d sessions", keys, n)
	}
	return float64(total) / float64(n), float64(after-before) / float64(n), nil
}

// userID is the i-th user's ID, idLen bytes long.
func userID(i, idLen int) string {
	s := fmt.Sprintf("u%0*d", idLen-1, i)
	return s[len(s)-idLen:]
}

// sealedLen is how long Crypt's sealed value of an idLen-byte user ID is:
// version, key ID, nonce, ciphertext and tag.
func sealedLen(idLen int) int { return 1 + 4 + 12 + idLen + 16 }

// writer returns what writes one session of r under prefix.
func writer(p *redis.Pool, r row, prefix string, idLen int) (func(string) error, error) {
	ctx := context.Background()
	if r.floor {
		valLen := idLen
		if r.crypt {
			valLen = sealedLen(idLen)
		}
		return func(userID string) error {
			var raw [32]byte
			rand.Read(raw[:])
			sum := sha256.Sum256(raw[:])
			k := prefix + ":{" + base64.RawURLEncoding.EncodeToString(sum[:]) + "}"
			c := p.Get()
			defer c.Close()
			_, err := c.Do("SET", k, strings.Repeat("v", valLen), "PX", time.Hour.Milliseconds())
			return err
		}, nil
	}
	o := r.o
	o.Prefix = prefix
	s, err := sesh.New(p, o)
	if err != nil {
		return nil, err
	}
	if !r.crypt {
		return func(userID string) error { _, err := s.Set(ctx, userID); return err }, nil
	}
	c, err := sesh.NewCrypt(s, make([]byte, 32))
	if err != nil {
		return nil, err
	}
	return func(userID string) error { _, err := c.Set(ctx, userID); return err }, nil
}

func usedMemory(p *redis.Pool) (int64, error) {
	c := p.Get()
	defer c.Close()
	info, err := redis.String(c.Do("INFO", "memory"))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// usageAndUnlink sums MEMORY USAGE over the keys under prefix, and unlinks
// them.
func usageAndUnlink(p *redis.Pool, prefix string) (total, keys int, err error) {
	c := p.Get()
	defer c.Close()
	for cur := 0; ; {
		vs, err := redis.Values(c.Do("SCAN", cur, "MATCH", prefix+":*", "COUNT", 1000))
		if err != nil {
			return 0, 0, err
		}
		cur, _ = redis.Int(vs[0], nil)
		ks, _ := redis.Strings(vs[1], nil)
		for _, k := range ks {
			c.Send("MEMORY", "USAGE", k, "SAMPLES", 0)
		}
		c.Flush()
		for range ks {
			n, err := redis.Int(c.Receive())
			if err != nil {
				return 0, 0, err
			}
			total += n
		}
		for _, k := range ks {
			c.Send("UNLINK", k)
		}
		c.Flush()
		for range ks {
			if _, err := c.Receive(); err != nil {
				return 0, 0, err
			}
		}
		keys += len(ks)
		if cur == 0 {
			return total, keys, nil
		}
	}
}

func init() { log.SetFlags(0); log.SetOutput(os.Stderr) }
