package seshotel_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshotel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// A Store whose metrics Prometheus scrapes from /metrics. A real program
// serves promhttp's handler on its own listener and sends its spans to an
// exporter (OTLP, say) through the TracerProvider.
func Example_prometheus() {
	mr, _ := miniredis.Run() // a real program: sesh.NewPool("redis://...")
	defer mr.Close()
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", mr.Addr()) }}
	defer pool.Close()

	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		panic(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())

	s, err := seshotel.New(pool, sesh.Options{}, seshotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	token, _ := s.Set(ctx, "alice")
	s.Get(ctx, token)
	s.Die(ctx, token)
	s.Get(ctx, token)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		line := sc.Text()
		if strings.HasPrefix(line, "sesh_operations_total") && !strings.HasSuffix(line, " 0") ||
			strings.HasPrefix(line, "db_client_operation_duration_seconds_count") {
			fmt.Println(dropScope(line))
		}
	}
	// Output:
	// db_client_operation_duration_seconds_count{db_operation_name="die",db_system_name="redis"} 1
	// db_client_operation_duration_seconds_count{db_operation_name="get",db_system_name="redis"} 2
	// db_client_operation_duration_seconds_count{db_operation_name="set",db_system_name="redis"} 1
	// sesh_operations_total{db_operation_name="die"} 1
	// sesh_operations_total{db_operation_name="get"} 2
	// sesh_operations_total{db_operation_name="set"} 1
}

// dropScope removes the otel_scope_* labels that the exporter adds to
// every series, for a shorter line.
func dropScope(line string) string {
	open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if open < 0 || end < open {
		return line
	}
	var keep []string
	for _, l := range strings.Split(line[open+1:end], ",") {
		if !strings.HasPrefix(l, "otel_scope_") {
			keep = append(keep, l)
		}
	}
	return line[:open+1] + strings.Join(keep, ",") + line[end:]
}
