// Package seshotel reports a sesh Store to OpenTelemetry: a span and a
// duration measurement for each operation, and the Store's [sesh.Stats] as
// metrics.
//
// It follows OpenTelemetry's semantic conventions for database clients
// where they apply. Spans are named "sesh.<op>" (sesh.get, sesh.set, ...),
// of kind client, with db.system.name "redis" and db.operation.name the
// operation's name; the histogram db.client.operation.duration, in
// seconds, carries the same attributes, and error.type when the operation
// failed. A token that is not live (ErrNotFound) is an answer, not a
// failure: it sets no error.type and leaves the span's status unset.
//
// The counters of Stats become observable instruments under sesh.*:
//
//	sesh.operations            {operation}  by db.operation.name
//	sesh.errors                {error}      by error.type: not_found, decrypt, not_replicated, context, invalid_user, other
//	sesh.cache.requests        {request}    by sesh.cache.result: hit, miss
//	sesh.cache.hit_ratio       1            hits / (hits + misses) since the previous collection
//	sesh.cache.dropped_fills   {fill}
//	sesh.cache.invalidations   {key}
//	sesh.cache.evictions       {entry}
//	sesh.cache.entries         {entry}      a gauge
//	sesh.cache.bypassed                     a gauge: 1 while the cache is bypassed, else 0
//	sesh.cache.bypass.time     s            total time bypassed
//	sesh.pipeline.batches      {batch}      auto-pipelining
//	sesh.pipeline.commands     {command}    auto-pipelining
//
// The sesh.cache.* instruments exist only for a Store with a cache. On a
// dashboard, the hit ratio over any window is
// rate(sesh_cache_requests_total{sesh_cache_result="hit"}[5m]) /
// rate(sesh_cache_requests_total[5m]) in PromQL; sesh.cache.hit_ratio is
// the same over the time between two collections, for a backend that
// cannot divide.
//
// Neither spans nor metrics ever carry a token or a user ID.
package seshotel

import (
	"context"
	"errors"
	"time"

	"github.com/seshkit/sesh"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/semconv/v1.39.0/dbconv"
	"go.opentelemetry.io/otel/trace"
)

// scope names the instrumentation library, as tracers and meters do.
const scope = "github.com/seshkit/sesh/seshotel"

// Options configures New. The zero value reports to OpenTelemetry's global
// providers.
type Options struct {
	// TracerProvider makes the spans. When nil, otel.GetTracerProvider().
	TracerProvider trace.TracerProvider

	// MeterProvider makes the metrics. When nil, otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// New returns a Store made by sesh.New(p, o) that reports to OpenTelemetry:
// a span and a duration for each operation, of the Store and of every Crypt
// over it, and its Stats as metrics. A Hook already in o still runs, inside
// the span. New returns an error when sesh.New does, or when an instrument
// cannot be made or registered.
//
// The Store's metrics are observed for as long as the MeterProvider runs,
// which keeps the Store reachable: make one instrumented Store per Redis,
// not one per request.
func New(p sesh.Pool, o sesh.Options, oo Options) (*sesh.Store, error) {
	tp, mp := oo.TracerProvider, oo.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(scope)
	h, err := newHook(tp.Tracer(scope), meter, o.Hook)
	if err != nil {
		return nil, err
	}
	o.Hook = h.hook
	s, err := sesh.New(p, o)
	if err != nil {
		return nil, err
	}
	if err := observe(meter, s, o.CacheSize > 0); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ops lists the names of sesh's operations, as a Hook is given them.
var ops = [...]string{"set", "get", "liv", "die", "dieall", "count", "rotate",
	"lookup", "sessions", "diesession", "dieothers", "dieeverything", "reauth"}

// errorTypes are the values of error.type, in the order of errorType's
// answers; not_found is one only in the sesh.errors counter.
var errorTypes = [...]string{"", "decrypt", "not_replicated", "context", "other", "invalid_user", "not_found"}

// errorType returns the index in errorTypes of err's kind: 0 for none,
// and for ErrNotFound, which is an answer.
func errorType(err error) int {
	switch {
	case err == nil, errors.Is(err, sesh.ErrNotFound):
		return 0
	case errors.Is(err, sesh.ErrDecrypt):
		return 1
	case errors.Is(err, sesh.ErrNotReplicated):
		return 2
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 3
	case errors.Is(err, sesh.ErrInvalidUser):
		return 5
	}
	return 4
}

// durationBounds are the histogram's buckets, in seconds: those the
// conventions advise for db.client.operation.duration, below which three
// more tell a cached Get (well under a microsecond to a few) from a round
// trip.
var durationBounds = []float64{0.000001, 0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// hook makes the spans and records the durations.
type hook struct {
	tracer   trace.Tracer
	duration metric.Float64Histogram
	next     sesh.Hook
	// The attributes of each operation, and of each with each error type,
	// made once.
	names [len(ops)]string // the spans' names
	start [len(ops)]trace.SpanStartOption
	attrs [len(ops)][len(errorTypes) - 1]metric.MeasurementOption
}

func newHook(tracer trace.Tracer, meter metric.Meter, next sesh.Hook) (*hook, error) {
	d, err := dbconv.NewClientOperationDuration(meter, metric.WithExplicitBucketBoundaries(durationBounds...))
	if err != nil {
		return nil, err
	}
	h := &hook{tracer: tracer, duration: d.Inst(), next: next}
	for i, op := range ops {
		base := []attribute.KeyValue{semconv.DBSystemNameRedis, semconv.DBOperationName(op)}
		h.names[i] = "sesh." + op
		h.start[i] = trace.WithAttributes(base...)
		for j, et := range errorTypes[:len(errorTypes)-1] {
			kv := base
			if et != "" {
				kv = append(kv[:len(kv):len(kv)], semconv.ErrorTypeKey.String(et))
			}
			h.attrs[i][j] = metric.WithAttributeSet(attribute.NewSet(kv...))
		}
	}
	return h, nil
}

func opIndex(op string) int {
	for i, o := range ops {
		if o == op {
			return i
		}
	}
	return -1
}

var kindClient = trace.WithSpanKind(trace.SpanKindClient)

// hook is the sesh.Hook.
func (h *hook) hook(ctx context.Context, op string) (context.Context, func(sesh.Result)) {
	i := opIndex(op)
	if i < 0 {
		// An operation newer than this package: leave it to the next Hook.
		if h.next != nil {
			return h.next(ctx, op)
		}
		return ctx, nil
	}
	start := time.Now()
	ctx, span := h.tracer.Start(ctx, h.names[i], kindClient, h.start[i])
	var next func(sesh.Result)
	if h.next != nil {
		if nctx, n := h.next(ctx, op); nctx != nil {
			ctx, next = nctx, n
		}
	}
	return ctx, func(r sesh.Result) {
		if next != nil {
			next(r)
		}
		et := errorType(r.Err)
		h.duration.Record(ctx, time.Since(start).Seconds(), h.attrs[i][et])
		h.end(span, r, et)
	}
}

// end ends span with what r says.
func (h *hook) end(span trace.Span, r sesh.Result, et int) {
	if span.IsRecording() {
		span.SetAttributes(
			attribute.Bool("sesh.cached", r.Cached),
			attribute.Int("sesh.round_trips", r.RoundTrips))
		if et != 0 {
			span.SetAttributes(semconv.ErrorTypeKey.String(errorTypes[et]))
			// sesh's errors name the operation and the cause, never a
			// token or a user ID.
			span.SetStatus(codes.Error, r.Err.Error())
		}
	}
	span.End()
}
