package seshotel_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// telemetry is an instrumented Store's in-memory exporters.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	opts   seshotel.Options
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	tel.opts = seshotel.Options{TracerProvider: tp, MeterProvider: mp}
	return tel
}

// metrics collects every metric by name.
func (tel *telemetry) metrics(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sum returns the value of the data point of the int sum or gauge agg
// whose attributes hold kv.
func sum(t *testing.T, agg metricdata.Aggregation, kv ...attribute.KeyValue) int64 {
	t.Helper()
	var points []metricdata.DataPoint[int64]
	switch a := agg.(type) {
	case metricdata.Sum[int64]:
		points = a.DataPoints
	case metricdata.Gauge[int64]:
		points = a.DataPoints
	default:
		t.Fatalf("%T is not an int sum or gauge", agg)
	}
	want := attribute.NewSet(kv...)
	for _, p := range points {
		if want.Equals(&p.Attributes) {
			return p.Value
		}
	}
	t.Fatalf("no data point with %v in %+v", kv, points)
	return 0
}

func miniPool(t *testing.T) *redis.Pool {
	t.Helper()
	mr := miniredis.RunT(t)
	p := &redis.Pool{DialContext: func(ctx context.Context) (redis.Conn, error) {
		return redis.DialContext(ctx, "tcp", mr.Addr())
	}}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestSpans checks the span of each operation: its name, kind, attributes
// and status, and that the caller's span is its parent.
func TestSpans(t *testing.T) {
	tel := newTelemetry(t)
	pool := miniPool(t)
	// The first Set on a server also loads Set's script: one round trip
	// more, once. A Store without telemetry takes it here.
	warm, err := sesh.New(pool, sesh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := warm.Set(context.Background(), "warm"); err != nil {
		t.Fatal(err)
	}
	s, err := seshotel.New(pool, sesh.Options{}, tel.opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sesh.NewCrypt(s, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "request")
	tok, err := s.Set(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	s.Get(ctx, tok)
	c.Get(ctx, tok) // a plain value: ErrDecrypt
	s.Die(ctx, tok)
	s.Get(ctx, tok) // ErrNotFound
	parent.End()

	want := []struct {
		name   string
		status codes.Code
		errTyp string
	}{
		{"sesh.set", codes.Unset, ""},
		{"sesh.get", codes.Unset, ""},
		{"sesh.get", codes.Error, "decrypt"},
		{"sesh.die", codes.Unset, ""},
		{"sesh.get", codes.Unset, ""},
	}
	spans := tel.spans.Ended()
	if len(spans) != len(want) {
		t.Fatalf("%d spans, want %d", len(spans), len(want))
	}
	for i, w := range want {
		sp := spans[i]
		attrs := attribute.NewSet(sp.Attributes()...)
		get := func(k string) string {
			if v, ok := attrs.Value(attribute.Key(k)); ok {
				return v.Emit()
			}
			return ""
		}
		switch {
		case sp.Name() != w.name, sp.SpanKind() != trace.SpanKindClient, sp.Status().Code != w.status:
			t.Errorf("span %d: %s %v %v, want %s, client, %v", i, sp.Name(), sp.SpanKind(), sp.Status(), w.name, w.status)
		case get("db.system.name") != "redis", "sesh."+get("db.operation.name") != w.name:
			t.Errorf("span %d: attributes %v", i, sp.Attributes())
		case get("error.type") != w.errTyp, get("sesh.round_trips") != "1", get("sesh.cached") != "false":
			t.Errorf("span %d: attributes %v, want error.type %q and one round trip", i, sp.Attributes(), w.errTyp)
		case sp.Parent().SpanID() != parent.SpanContext().SpanID():
			t.Errorf("span %d is not a child of the caller's span", i)
		}
		for _, kv := range sp.Attributes() {
			if v := kv.Value.Emit(); v == tok || v == "alice" {
				t.Errorf("span %d carries %s=%q", i, kv.Key, v)
			}
		}
	}
}

// TestMetrics checks the duration histogram and the counters from Stats.
func TestMetrics(t *testing.T) {
	tel := newTelemetry(t)
	ctx := context.Background()
	var inner []string
	o := sesh.Options{Hook: func(ctx context.Context, op string) (context.Context, func(sesh.Result)) {
		return ctx, func(sesh.Result) { inner = append(inner, op) }
	}}
	s, err := seshotel.New(miniPool(t), o, tel.opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := s.Set(ctx, "alice")
	s.Get(ctx, tok)
	s.Get(ctx, tok)
	s.Get(ctx, "malformed")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	s.Liv(cancelled, tok)
	if len(inner) != 5 {
		t.Errorf("the Hook in Options saw %v, want 5 operations", inner)
	}

	m := tel.metrics(t)
	hist, ok := m["db.client.operation.duration"].(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("db.client.operation.duration is %T", m["db.client.operation.duration"])
	}
	counts := map[string]uint64{}
	for _, p := range hist.DataPoints {
		op, _ := p.Attributes.Value("db.operation.name")
		et, _ := p.Attributes.Value("error.type")
		sys, _ := p.Attributes.Value("db.system.name")
		if sys.AsString() != "redis" {
			t.Errorf("a data point without db.system.name redis: %v", p.Attributes)
		}
		counts[op.AsString()+"/"+et.AsString()] += p.Count
	}
	if want := map[string]uint64{"set/": 1, "get/": 3, "liv/context": 1}; !equal(counts, want) {
		t.Errorf("durations recorded %v, want %v", counts, want)
	}

	for _, c := range []struct {
		name string
		kv   attribute.KeyValue
		want int64
	}{
		{"sesh.operations", attribute.String("db.operation.name", "get"), 3},
		{"sesh.operations", attribute.String("db.operation.name", "set"), 1},
		{"sesh.operations", attribute.String("db.operation.name", "rotate"), 0},
		{"sesh.errors", attribute.String("error.type", "not_found"), 1},
		{"sesh.errors", attribute.String("error.type", "context"), 1},
		{"sesh.errors", attribute.String("error.type", "other"), 0},
	} {
		if got := sum(t, m[c.name], c.kv); got != c.want {
			t.Errorf("%s{%s} = %d, want %d", c.name, c.kv.Value.Emit(), got, c.want)
		}
	}
	if _, ok := m["sesh.cache.requests"]; ok {
		t.Error("a Store without a cache reports sesh.cache.requests")
	}
}

func equal(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestCacheMetrics checks the cache's instruments on real Redis: miniredis
// has no CLIENT TRACKING.
func TestCacheMetrics(t *testing.T) {
	url := os.Getenv("SESH_REDIS_URL")
	if url == "" {
		t.Skip("SESH_REDIS_URL is not set; .ci/run sets it")
	}
	p, err := sesh.NewPool(url)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var b [6]byte
	rand.Read(b[:])
	tel := newTelemetry(t)
	ctx := context.Background()
	s, err := seshotel.New(p, sesh.Options{Prefix: "seshotel-" + hex.EncodeToString(b[:]), TTL: time.Minute, CacheSize: 64}, tel.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, err := s.Set(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Die(ctx, tok)
	for i := 0; s.Stats().Cache.Hits == 0; i++ {
		if _, err := s.Get(ctx, tok); err != nil || i == 1000 {
			t.Fatalf("Get: %v, after %d Gets and no hit", err, i)
		}
	}
	st := s.Stats()
	m := tel.metrics(t)
	if got := sum(t, m["sesh.cache.requests"], attribute.String("sesh.cache.result", "hit")); got != int64(st.Cache.Hits) {
		t.Errorf("hits %d, want %d", got, st.Cache.Hits)
	}
	if got := sum(t, m["sesh.cache.requests"], attribute.String("sesh.cache.result", "miss")); got != int64(st.Cache.Misses) {
		t.Errorf("misses %d, want %d", got, st.Cache.Misses)
	}
	// The Set's own invalidation may reach the cache after a fill and
	// drop the entry (safe, and rare), even while the metrics are read: the
	// gauge must say what Stats says before or after.
	after := s.Stats().Cache.Entries
	if got := sum(t, m["sesh.cache.entries"]); got != int64(st.Cache.Entries) && got != int64(after) || got > 1 {
		t.Errorf("entries %d, want %d or %d (Stats before and after), at most 1", got, st.Cache.Entries, after)
	}
	if got := sum(t, m["sesh.cache.bypassed"]); got != 0 {
		t.Errorf("bypassed %d, want 0", got)
	}
	ratio, ok := m["sesh.cache.hit_ratio"].(metricdata.Gauge[float64])
	if want := float64(st.Cache.Hits) / float64(st.Cache.Hits+st.Cache.Misses); !ok || len(ratio.DataPoints) != 1 || ratio.DataPoints[0].Value != want {
		t.Errorf("hit ratio %+v, want %v", m["sesh.cache.hit_ratio"], want)
	}
	// A Get's span says whether the cache answered it, as Stats counts it;
	// Get until one is answered from the cache.
	for i := 0; ; i++ {
		hits := s.Stats().Cache.Hits
		if _, err := s.Get(ctx, tok); err != nil {
			t.Fatal(err)
		}
		hit := s.Stats().Cache.Hits > hits
		spans := tel.spans.Ended()
		last := attribute.NewSet(spans[len(spans)-1].Attributes()...)
		if v, _ := last.Value("sesh.cached"); v.AsBool() != hit {
			t.Fatalf("the span of a Get that hit the cache (%v): %v", hit, spans[len(spans)-1].Attributes())
		}
		if hit {
			break
		}
		if i == 1000 {
			t.Fatal("1000 Gets and no hit")
		}
	}
}

// TestNewFails checks that New returns sesh.New's error.
func TestNewFails(t *testing.T) {
	_, err := seshotel.New(miniPool(t), sesh.Options{TTL: -2}, newTelemetry(t).opts)
	if err == nil || errors.Is(err, sesh.ErrNotFound) {
		t.Fatalf("New with a bad TTL = %v", err)
	}
}

// BenchmarkHook measures what seshotel adds to an operation, on a Get of a
// malformed token, which does no I/O: without seshotel, with the no-op
// providers of an unconfigured program, with the SDK recording every span
// and the histogram, and with the SDK sampling 1% of the spans.
func BenchmarkHook(b *testing.B) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		b.Fatal(err)
	}
	defer mr.Close()
	p := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", mr.Addr()) }}
	defer p.Close()
	tp := sdktrace.NewTracerProvider()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer tp.Shutdown(context.Background())
	defer mp.Shutdown(context.Background())
	plain, err := sesh.New(p, sesh.Options{})
	if err != nil {
		b.Fatal(err)
	}
	noop, err := seshotel.New(p, sesh.Options{}, seshotel.Options{
		TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()})
	if err != nil {
		b.Fatal(err)
	}
	sdk, err := seshotel.New(p, sesh.Options{}, seshotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	sampledTP := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
	defer sampledTP.Shutdown(context.Background())
	sampled, err := seshotel.New(p, sesh.Options{}, seshotel.Options{TracerProvider: sampledTP, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		s    *sesh.Store
	}{{"sesh", plain}, {"seshotel-noop", noop}, {"seshotel-sdk", sdk}, {"seshotel-sdk-1%", sampled}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.s.Get(ctx, "malformed"); !errors.Is(err, sesh.ErrNotFound) {
					b.Fatal(err)
				}
			}
		})
	}
}
