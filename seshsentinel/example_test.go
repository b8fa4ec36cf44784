package seshsentinel_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshsentinel"
)

// A Store on the master that Sentinel elects, whose ending operations wait
// until a replica has the deletion, so that it survives a failover.
func Example() {
	pool, err := seshsentinel.New("seshmaster",
		[]string{"127.0.0.1:7211", "127.0.0.1:7212", "127.0.0.1:7213"},
		redis.DialReadTimeout(5*time.Second), // above ReplicaTimeout
	)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := sesh.New(pool, sesh.Options{
		TrackUsers:     true,
		Replicas:       1,
		ReplicaTimeout: time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tok, err := store.Set(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	user, err := store.Get(ctx, tok)
	fmt.Println(user, err)

	switch err := store.Die(ctx, tok); {
	case errors.Is(err, sesh.ErrNotReplicated):
		// Ended on the master, but no replica confirmed it in time: a
		// failover now could bring the token back. Retry, or alert.
		log.Print(err)
	case err != nil:
		log.Fatal(err)
	}
}
