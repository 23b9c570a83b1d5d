package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the service's Prometheus collectors, in a registry of their
// own (not the global one), so that tests can build many servers.
type Metrics struct {
	Registry *prometheus.Registry

	requestSeconds *prometheus.HistogramVec
	appendSeconds  *prometheus.HistogramVec
}

// NewMetrics registers the collectors: HTTP request durations, event store
// append latencies, and the Go runtime and process statistics.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ansinh",
			Name:      "http_request_duration_seconds",
			Help:      "Time to serve an HTTP request, by route template, method and status.",
			Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		appendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ansinh",
			Name:      "eventstore_append_duration_seconds",
			Help:      "Time for an event store append to become durable, by outcome (ok, wrong_expected_revision, error).",
			Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requestSeconds, m.appendSeconds,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observeRequest(route, method string, status int, d time.Duration) {
	m.requestSeconds.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

// watchProjections registers the lag gauge. It is computed at scrape time
// (one read of the log), bounded by a short timeout; a failed read reports
// -1 rather than a stale number.
func (m *Metrics) watchProjections(lag func(context.Context) (time.Duration, error)) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ansinh",
		Name:      "projection_lag_seconds",
		Help:      "Age of the oldest event the projections have not applied; 0 when they are at the head, -1 when unknown.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		d, err := lag(ctx)
		if err != nil {
			return -1
		}
		return d.Seconds()
	})
	if err := m.Registry.Register(g); err != nil {
		return fmt.Errorf("api: register projection lag gauge: %w", err)
	}
	return nil
}

// handler serves the exposition format.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		// A failing collector must not hide the others.
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.Registry,
		EnableOpenMetrics: false,
	})
}

// InstrumentStore wraps a store so that every Append is timed. Everything
// that writes (the ledger, the users directory) should be given the wrapped
// store.
func (m *Metrics) InstrumentStore(s eventstore.Store) eventstore.Store {
	return &instrumentedStore{Store: s, appendSeconds: m.appendSeconds}
}

type instrumentedStore struct {
	eventstore.Store
	appendSeconds *prometheus.HistogramVec
}

func (s *instrumentedStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, stream, expected, events...)
	outcome := "ok"
	switch {
	case errors.Is(err, eventstore.ErrWrongExpectedRevision):
		outcome = "wrong_expected_revision"
	case err != nil:
		outcome = "error"
	}
	s.appendSeconds.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return res, err
}
