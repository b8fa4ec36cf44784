package seshotel

import (
	"context"

	"github.com/seshkit/sesh"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
)

// observe registers the instruments that report s.Stats(), read once per
// collection. The cache's are made only when withCache.
func observe(meter metric.Meter, s *sesh.Store, withCache bool) error {
	var (
		errs []error
		obs  []metric.Observable
	)
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		obs = append(obs, c)
		return c
	}
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		obs = append(obs, g)
		return g
	}
	opsC := counter("sesh.operations", "{operation}", "Operations of the Store that returned, by name.")
	errsC := counter("sesh.errors", "{error}", "Errors the Store's operations returned, by kind.")
	batches := counter("sesh.pipeline.batches", "{batch}", "Batches written by auto-pipelining.")
	calls := counter("sesh.pipeline.calls", "{call}", "Round trips of operations in the batches written by auto-pipelining.")
	commands := counter("sesh.pipeline.commands", "{command}", "Commands in the batches written by auto-pipelining.")

	var (
		requests, dropped, invalidations, evictions metric.Int64ObservableCounter
		entries, bypassed                           metric.Int64ObservableGauge
		ratio                                       metric.Float64ObservableGauge
		bypassTime                                  metric.Float64ObservableCounter
	)
	if withCache {
		requests = counter("sesh.cache.requests", "{request}", "Gets of well-formed tokens: hits answered from memory, misses that went to Redis.")
		dropped = counter("sesh.cache.dropped_fills", "{fill}", "Values read by a miss that were not cached, since the key was invalidated during the round trip.")
		invalidations = counter("sesh.cache.invalidations", "{key}", "Token keys Redis said had changed.")
		evictions = counter("sesh.cache.evictions", "{entry}", "Entries dropped to make room.")
		entries = gauge("sesh.cache.entries", "{entry}", "Tokens the cache holds.")
		// No unit: Prometheus would name a gauge of unit 1 a ratio.
		bypassed = gauge("sesh.cache.bypassed", "", "1 while every Get goes to Redis: tracking is down or heartbeats are late.")
		var err error
		ratio, err = meter.Float64ObservableGauge("sesh.cache.hit_ratio", metric.WithUnit("1"),
			metric.WithDescription("Hits / (hits + misses) since the previous collection; absent when there was no Get."))
		errs = append(errs, err)
		bypassTime, err = meter.Float64ObservableCounter("sesh.cache.bypass.time", metric.WithUnit("s"),
			metric.WithDescription("Total time the cache has been bypassed."))
		errs = append(errs, err)
		obs = append(obs, ratio, bypassTime)
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}

	opSets := make([]metric.ObserveOption, len(ops))
	for i, op := range ops {
		opSets[i] = metric.WithAttributeSet(attribute.NewSet(semconv.DBOperationName(op)))
	}
	errSet := func(kind string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(semconv.ErrorTypeKey.String(kind)))
	}
	errSets := [6]metric.ObserveOption{errSet("not_found"), errSet("decrypt"), errSet("not_replicated"), errSet("context"), errSet("invalid_user"), errSet("other")}
	hit := metric.WithAttributeSet(attribute.NewSet(attribute.String("sesh.cache.result", "hit")))
	miss := metric.WithAttributeSet(attribute.NewSet(attribute.String("sesh.cache.result", "miss")))
	var lastHits, lastMisses uint64

	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := s.Stats()
		for i, n := range []uint64{st.Ops.Set, st.Ops.Get, st.Ops.Liv, st.Ops.Die, st.Ops.DieAll, st.Ops.Count, st.Ops.Rotate,
			st.Ops.Lookup, st.Ops.Sessions, st.Ops.DieSession, st.Ops.DieOthers, st.Ops.DieEverything, st.Ops.Reauth} {
			o.ObserveInt64(opsC, int64(n), opSets[i])
		}
		e := st.Errors
		for i, n := range []uint64{e.NotFound, e.Decrypt, e.NotReplicated, e.Context, e.InvalidUser, e.Other} {
			o.ObserveInt64(errsC, int64(n), errSets[i])
		}
		o.ObserveInt64(batches, int64(st.Batches.Batches))
		o.ObserveInt64(calls, int64(st.Batches.Calls))
		o.ObserveInt64(commands, int64(st.Batches.Commands))
		if !withCache {
			return nil
		}
		c := st.Cache
		o.ObserveInt64(requests, int64(c.Hits), hit)
		o.ObserveInt64(requests, int64(c.Misses), miss)
		if h, m := c.Hits-lastHits, c.Misses-lastMisses; h+m > 0 {
			o.ObserveFloat64(ratio, float64(h)/float64(h+m))
		}
		lastHits, lastMisses = c.Hits, c.Misses
		o.ObserveInt64(dropped, int64(c.DroppedFills))
		o.ObserveInt64(invalidations, int64(c.Invalidations))
		o.ObserveInt64(evictions, int64(c.Evictions))
		o.ObserveInt64(entries, int64(c.Entries))
		b := int64(0)
		if c.Bypassed {
			b = 1
		}
		o.ObserveInt64(bypassed, b)
		o.ObserveFloat64(bypassTime, c.BypassedFor.Seconds())
		return nil
	}, obs...)
	return err
}
