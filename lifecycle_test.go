package sesh_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// rewriting is a Pool whose connections pass each reply through rewrite,
// element by element for a pipeline's.
type rewriting struct {
	sesh.Pool
	rewrite func(v any) any
}

type rewritingConn struct {
	redis.Conn
	rewrite func(v any) any
}

func (p rewriting) GetContext(ctx context.Context) (redis.Conn, error) {
	c, err := p.Pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	return rewritingConn{c, p.rewrite}, nil
}

func (c rewritingConn) Do(cmd string, args ...any) (any, error) {
	v, err := c.Conn.Do(cmd, args...)
	if err != nil {
		return v, err
	}
	if vs, ok := v.([]any); ok && cmd == "" {
		for i := range vs {
			vs[i] = c.rewrite(vs[i])
		}
		return vs, nil
	}
	return c.rewrite(v), nil
}

// TestReplyNotInError checks that an error about a malformed reply
// describes its shape and never shows its content: a reply may hold a
// stored value, which a plain Store's user ID is.
func TestReplyNotInError(t *testing.T) {
	const user = "alice@example.com"
	// Any way an error message could spell the user ID.
	spellings := []string{user, fmt.Sprint([]byte(user))[1:20], hex.EncodeToString([]byte(user))}
	for _, tc := range []struct {
		name    string
		rewrite func(v any) any
		op      func(ctx context.Context, s *sesh.Store, tok string) error
		shape   string
	}{
		{
			name: "Rotate's read of the old token",
			rewrite: func(v any) any {
				// The read script's {value, idle, deadline, indexed, then
				// the authentication time's and the handle's names and
				// values}, with one more element.
				if vs, ok := v.([]any); ok && len(vs) == 8 && fmt.Sprint(vs[0]) == fmt.Sprint([]byte(user)) {
					return append(vs, vs[1])
				}
				return v
			},
			op: func(ctx context.Context, s *sesh.Store, tok string) error {
				_, err := s.Rotate(ctx, tok)
				return err
			},
			shape: "an array of 9",
		},
		{
			name: "Set's index entry",
			rewrite: func(v any) any {
				// register's {added, due members}, replaced by the user ID.
				if vs, ok := v.([]any); ok && len(vs) == 2 {
					if _, ok := vs[0].(int64); ok {
						return []byte(user)
					}
				}
				return v
			},
			op: func(ctx context.Context, s *sesh.Store, _ string) error {
				_, err := s.Set(ctx, user)
				return err
			},
			shape: "a string of 17 bytes",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, p := miniPool(t)
			o := sesh.Options{TrackUsers: true, Pipelines: sesh.NoPipelining}
			plain, err := sesh.New(p, o)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := plain.Set(context.Background(), user)
			if err != nil {
				t.Fatal(err)
			}
			s, err := sesh.New(rewriting{p, tc.rewrite}, o)
			if err != nil {
				t.Fatal(err)
			}
			err = tc.op(context.Background(), s, tok)
			if err == nil || !strings.Contains(err.Error(), tc.shape) {
				t.Fatalf("error = %v; want one that says %q", err, tc.shape)
			}
			for _, sp := range spellings {
				if strings.Contains(err.Error(), sp) {
					t.Fatalf("error %q shows the stored value", err)
				}
			}
		})
	}
}
