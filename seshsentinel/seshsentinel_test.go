package seshsentinel_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/storetest"
	"github.com/seshkit/sesh/seshsentinel"
)

// sentinelEnv returns SESH_SENTINEL_ADDRS and SESH_SENTINEL_MASTER. It skips
// the test when the addresses are not set.
func sentinelEnv(t *testing.T) (addrs []string, master string) {
	t.Helper()
	a := os.Getenv("SESH_SENTINEL_ADDRS")
	if a == "" {
		t.Skip(`SESH_SENTINEL_ADDRS is not set; run scripts/redis-sentinel.sh start and eval "$(scripts/env.sh)"`)
	}
	master = os.Getenv("SESH_SENTINEL_MASTER")
	if master == "" {
		t.Fatal("SESH_SENTINEL_ADDRS is set but SESH_SENTINEL_MASTER is not")
	}
	return strings.Split(a, ","), master
}

// newPool returns a pool on the sentinels' master, and fails the test when
// it does not answer: nothing skips quietly.
func newPool(t *testing.T) *redis.Pool {
	t.Helper()
	addrs, master := sentinelEnv(t)
	p, err := seshsentinel.New(master, addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.GetContext(ctx)
	if err != nil {
		t.Fatalf("master %q behind SESH_SENTINEL_ADDRS=%s does not answer: %v", master, strings.Join(addrs, ","), err)
	}
	defer c.Close()
	if _, err := redis.DoContext(c, ctx, "PING"); err != nil {
		t.Fatalf("master %q does not answer PING: %v", master, err)
	}
	return p
}

// prefix returns a key namespace no other test uses.
func prefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "seshs-" + hex.EncodeToString(b[:])
}

// sentinelSays asks the first sentinel that answers for an address: the
// master's, or with role "replica" the first replica's.
func sentinelSays(t *testing.T, role string) string {
	t.Helper()
	addrs, master := sentinelEnv(t)
	var last error
	for _, a := range addrs {
		c, err := redis.Dial("tcp", a, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
		if err != nil {
			last = err
			continue
		}
		defer c.Close()
		if role == "master" {
			hp, err := redis.Strings(c.Do("SENTINEL", "get-master-addr-by-name", master))
			if err != nil || len(hp) != 2 {
				last = err
				continue
			}
			return hp[0] + ":" + hp[1]
		}
		rs, err := redis.Values(c.Do("SENTINEL", "replicas", master))
		if err != nil || len(rs) == 0 {
			last = err
			continue
		}
		m, _ := redis.StringMap(rs[0], nil)
		return m["ip"] + ":" + m["port"]
	}
	t.Fatalf("no sentinel names the %s of %q: %v", role, master, last)
	return ""
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name   string
		master string
		addrs  []string
	}{
		{"an empty master name", "", []string{"127.0.0.1:26379"}},
		{"no sentinel addresses", "mymaster", nil},
		{"an empty sentinel address", "mymaster", []string{"127.0.0.1:26379", ""}},
	} {
		t.Run(tc.name+" is refused at once", func(t *testing.T) {
			p, err := seshsentinel.New(tc.master, tc.addrs)
			if p != nil || err == nil || !strings.HasPrefix(err.Error(), "seshsentinel: new: ") {
				t.Fatalf("New = %v, %v; want nil and a seshsentinel: new: error", p, err)
			}
		})
	}

	t.Run("unreachable sentinels fail the dial, not New", func(t *testing.T) {
		p, err := seshsentinel.New("mymaster", []string{"127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = p.GetContext(ctx)
		if err == nil || !strings.HasPrefix(err.Error(), "seshsentinel: dial: ") {
			t.Fatalf("GetContext = %v; want a seshsentinel: dial: error", err)
		}
	})
}

func TestStore(t *testing.T) {
	p := newPool(t)
	t.Run("batched", func(t *testing.T) {
		storetest.Run(t, storetest.Backend{
			Name:    "sentinel",
			Pool:    p,
			Advance: func(t *testing.T, d time.Duration) { time.Sleep(d) },
			Unit:    250 * time.Millisecond,
		})
	})
	t.Run("nobatch", func(t *testing.T) {
		storetest.Run(t, storetest.Backend{
			Name:      "sentinel/nobatch",
			Pool:      p,
			Advance:   func(t *testing.T, d time.Duration) { time.Sleep(d) },
			Unit:      250 * time.Millisecond,
			Pipelines: sesh.NoPipelining,
		})
	})
}

func TestMaster(t *testing.T) {
	p := newPool(t)
	want := sentinelSays(t, "master")
	c := p.Get()
	defer c.Close()
	role, err := redis.Values(c.Do("ROLE"))
	if err != nil || len(role) == 0 {
		t.Fatalf("ROLE = %v, %v", role, err)
	}
	if r, _ := redis.String(role[0], nil); r != "master" {
		t.Fatalf("ROLE = %q; want master", r)
	}
	info, err := redis.String(c.Do("INFO", "server"))
	if err != nil {
		t.Fatal(err)
	}
	port := want[strings.LastIndex(want, ":")+1:]
	if !strings.Contains(info, "tcp_port:"+port+"\r\n") {
		t.Fatalf("the pool reached a server not on port %s, where the sentinels say %s is", port, want)
	}
}

func TestWait(t *testing.T) {
	p := newPool(t)
	for _, tc := range []struct {
		name string
		o    sesh.Options
		ok   bool
	}{
		{"Replicas 1 is acknowledged", sesh.Options{Replicas: 1}, true},
		{"Replicas 2, more than there are, is not", sesh.Options{Replicas: 2, ReplicaTimeout: 200 * time.Millisecond}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Prefix, tc.o.TrackUsers, tc.o.TTL = prefix(), true, time.Minute
			s, err := sesh.New(p, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			// The context outlives ReplicaTimeout by far: an error must be
			// ErrNotReplicated, never the deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			check := func(op string, err error) {
				t.Helper()
				switch {
				case tc.ok && err != nil:
					t.Fatalf("%s = %v; want nil", op, err)
				case !tc.ok && (!errors.Is(err, sesh.ErrNotReplicated) || !strings.HasPrefix(err.Error(), "sesh: "+op+": ")):
					t.Fatalf("%s = %v; want sesh: %s: wrapping ErrNotReplicated", op, err, op)
				}
			}
			// Set waits for its index entry: unacknowledged, it gives no token.
			tok, err := s.Set(ctx, "alice")
			check("set", err)
			if tc.ok {
				s.Die(ctx, tok)
			} else if tok != "" {
				t.Fatalf("an unacknowledged Set gave a token")
			}
			// The tokens to end come from a Store that does not wait.
			plain, err := sesh.New(p, sesh.Options{Prefix: tc.o.Prefix, TrackUsers: true, TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			toks := make([]string, 4)
			for i := range toks {
				if toks[i], err = plain.Set(ctx, "alice"); err != nil {
					t.Fatal(err)
				}
			}
			check("die", s.Die(ctx, toks[0]))
			nt, err := s.Rotate(ctx, toks[1])
			check("rotate", err)
			n, err := s.DieAll(ctx, "alice")
			check("dieall", err)
			if n != 3 {
				t.Fatalf("DieAll ended %d; want 3", n)
			}
			for _, tok := range append(toks, nt) {
				if _, err := s.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
					t.Fatalf("Get after the end = %v; want ErrNotFound", err)
				}
			}
		})
	}
}

// The replies of a replica to a write, and of a replica cut off from its
// master, as Redis 4 to 7 word them, directly and from within scripts.
func TestNotMaster(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"READONLY is a replica's answer to a write", redis.Error("READONLY You can't write against a read only replica."), true},
		{"READONLY as Redis before 5 words it", redis.Error("READONLY You can't write against a read only slave."), true},
		{"READONLY from a script in Redis 7", redis.Error("READONLY You can't write against a read only replica. script: d8f2fad9f8e86a53d2a6ebd960b33c4972cacc37, on @user_script:1."), true},
		{"READONLY from a function in Redis 7", redis.Error("READONLY You can't write against a read only replica. script: setter, on @user_function:3."), true},
		{"READONLY re-raised by a script in Redis 7", redis.Error("ERR user_script:1: READONLY You can't write against a read only replica. script: fb721f8106d9605386cb29ae19ec077e3d7f45d2, on @user_script:1."), true},
		{"READONLY from a script in Redis 6.2", redis.Error("ERR Error running script (call to f_d8f2fad9f8e86a53d2a6ebd960b33c4972cacc37): @user_script:1: @user_script: 1: -READONLY You can't write against a read only replica."), true},
		{"READONLY from a script in Redis 6.2, with its CRLF as spaces", redis.Error("ERR Error running script (call to f_d8f2fad9f8e86a53d2a6ebd960b33c4972cacc37): @user_script:1: @user_script: 1: -READONLY You can't write against a read only replica.   "), true},
		{"READONLY returned by a script from redis.pcall in Redis 6.2", redis.Error("@user_script: 1: -READONLY You can't write against a read only replica."), true},
		{"READONLY wrapped by sesh", fmt.Errorf("sesh: set: %w", redis.Error("READONLY You can't write against a read only replica.")), true},
		{"MASTERDOWN is a replica's that lost its master", redis.Error("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},

		{"no error is not", nil, false},
		{"a wrong argument is not", redis.Error("ERR value is not an integer or out of range"), false},
		{"LOADING is not: a master loading its data answers it too", redis.Error("LOADING Redis is loading the dataset in memory"), false},
		{"NOREPLICAS is not: it comes from a master", redis.Error("NOREPLICAS Not enough good replicas to write."), false},
		{"NOSCRIPT is not", redis.Error("NOSCRIPT No matching script. Please use EVAL."), false},
		{"a script's error with readonly in a value is not", redis.Error("ERR user_script:1: field readonly must be true or false script: 5b1e9b52b1c0f2ae2a4b5f0c58e1bd3f5e2f2a4c, on @user_script:1."), false},
		{"a script's error with READONLY inside a sentence is not", redis.Error("ERR user_script:1: mode READONLY is set twice script: 5b1e9b52b1c0f2ae2a4b5f0c58e1bd3f5e2f2a4c, on @user_script:1."), false},
		{"a Redis 6.2 script's error with readonly in a value is not", redis.Error("ERR Error running script (call to f_5b1e9b52b1c0f2ae2a4b5f0c58e1bd3f5e2f2a4c): @user_script:1: user_script:1: the account is readonly"), false},
		{"a longer word that starts with READONLY is not", redis.Error("READONLYISH is no error Redis sends"), false},
		{"an I/O error is not, whatever its text", errors.New("READONLY You can't write against a read only replica."), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := seshsentinel.NotMaster(tc.err); got != tc.want {
				t.Errorf("NotMaster(%q) = %v; want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A connection told READONLY reaches a replica: it must leave the pool.
func TestReadOnlyLeavesThePool(t *testing.T) {
	sentinelEnv(t)
	replica := sentinelSays(t, "replica")
	// Fail loudly when the replica does not answer, or is not one.
	rc, err := redis.Dial("tcp", replica, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
	if err != nil {
		t.Fatalf("replica %s, named by the sentinels, does not answer: %v", replica, err)
	}
	role, err := redis.Values(rc.Do("ROLE"))
	rc.Close()
	if r, _ := redis.String(role[0], err); err != nil || r != "slave" {
		t.Fatalf("ROLE of %s = %v, %v; want slave", replica, role, err)
	}
	p := &redis.Pool{
		Dial: func() (redis.Conn, error) {
			c, err := redis.Dial("tcp", replica, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
			if err != nil {
				return nil, err
			}
			return seshsentinel.WatchReadOnly(c), nil
		},
		MaxIdle: 4,
	}
	defer p.Close()
	k := prefix()
	const write = "return redis.call('SET', KEYS[1], ARGV[1])"
	for _, tc := range []struct {
		name string
		do   func(c redis.Conn) error
	}{
		{"a write", func(c redis.Conn) error { _, err := c.Do("SET", k, "1"); return err }},
		{"a script's write", func(c redis.Conn) error { _, err := c.Do("EVAL", write, 1, k, "1"); return err }},
		{"a script's write by EVALSHA, as sesh sends it", func(c redis.Conn) error {
			_, err := redis.NewScript(1, write).Do(c, k, "1")
			return err
		}},
		// Never error(r) itself: Redis 7.0.15 crashes on a table raised so.
		{"a script's write whose error the script raises again", func(c redis.Conn) error {
			_, err := c.Do("EVAL", "local r = redis.pcall('SET', KEYS[1], ARGV[1]) if r.err then error(r.err) end return r", 1, k, "1")
			return err
		}},
		{"a write within a deadline", func(c redis.Conn) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := redis.DoContext(c, ctx, "SET", k, "1")
			return err
		}},
		{"a write in a pipeline", func(c redis.Conn) error {
			c.Send("GET", k)
			c.Send("SET", k, "1")
			rs, err := redis.Values(c.Do(""))
			if err != nil {
				return err
			}
			err, _ = rs[1].(redis.Error)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := p.Get()
			if err := tc.do(c); !seshsentinel.NotMaster(err) {
				t.Fatalf("%s on a replica = %v; want an error that says it is not the master", tc.name, err)
			}
			if c.Err() == nil {
				t.Fatal("Err() = nil after the replica refused the write")
			}
			c.Close()
			if n := p.Stats().IdleCount; n != 0 {
				t.Fatalf("%d idle connections after the replica refused the write; want 0", n)
			}
		})
	}

	// Reads are fine on a replica, and keep the connection.
	for _, args := range [][]any{{"GET", k}, {"EVAL", "return redis.call('GET', KEYS[1])", 1, k}} {
		c := p.Get()
		if _, err := c.Do(args[0].(string), args[1:]...); err != nil || c.Err() != nil {
			t.Fatalf("%s on a replica = %v, Err() = %v", args[0], err, c.Err())
		}
		c.Close()
		if n := p.Stats().IdleCount; n != 1 {
			t.Fatalf("%d idle connections after %s; want 1", n, args[0])
		}
	}
}
