package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
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

// readModelCollector reports each read model at scrape time, from one
// projections Lag (a read of the log's head and of the runner's published
// state): how far behind it is, what it has applied, whether it stopped on
// an event (the figure to alert on: a stopped read model serves stale
// answers until an operator acts, docs/audit.md), and a rebuild's distance
// to the head. When the head cannot be read (the store is down), the
// distances are left out rather than reported stale, and the rest comes
// from the runner's own state (statuses), so that an alert on a stopped
// read model does not go quiet with the store.
type readModelCollector struct {
	lag      func(context.Context) (projections.Lag, error)
	statuses func() []projections.Status
}

var (
	readModelBehindDesc = prometheus.NewDesc("ansinh_projection_events_behind",
		"Events of the log a read model has not applied (-1 when the store's positions do not count events: EventStoreDB).",
		[]string{"projection"}, nil)
	readModelAppliedDesc = prometheus.NewDesc("ansinh_projection_applied_events",
		"Events a read model's serving generation has applied and committed.", []string{"projection"}, nil)
	readModelFailedDesc = prometheus.NewDesc("ansinh_projection_failed",
		"1 when a read model stopped on an event (GET /v1/projections names it), else 0.", []string{"projection"}, nil)
	readModelGenerationDesc = prometheus.NewDesc("ansinh_projection_generation",
		"The generation serving a read model; it grows by one at each rebuild's switch.", []string{"projection"}, nil)
	readModelRebuildDesc = prometheus.NewDesc("ansinh_projection_rebuild_events_behind",
		"Events a rebuild in progress has still to apply before its switch (-1 with EventStoreDB); absent when none runs.",
		[]string{"projection"}, nil)
)

func (c readModelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{readModelBehindDesc, readModelAppliedDesc, readModelFailedDesc, readModelGenerationDesc, readModelRebuildDesc} {
		ch <- d
	}
}

func (c readModelCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	sts, headKnown := []projections.Status(nil), true
	if lag, err := c.lag(ctx); err == nil {
		sts = lag.Projections
	} else {
		sts, headKnown = c.statuses(), false
	}
	gauge := func(d *prometheus.Desc, v float64, name string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
	}
	for _, st := range sts {
		failed := 0.0
		if st.Failure != nil {
			failed = 1
		}
		gauge(readModelAppliedDesc, float64(st.Applied), st.Name)
		gauge(readModelFailedDesc, failed, st.Name)
		gauge(readModelGenerationDesc, float64(st.Generation), st.Name)
		if !headKnown {
			continue
		}
		gauge(readModelBehindDesc, float64(st.EventsBehind), st.Name)
		if st.Rebuild != nil {
			gauge(readModelRebuildDesc, float64(st.Rebuild.EventsBehind), st.Name)
		}
	}
}

// watchReadModels registers readModelCollector.
func (m *Metrics) watchReadModels(lag func(context.Context) (projections.Lag, error), statuses func() []projections.Status) error {
	if err := m.Registry.Register(readModelCollector{lag: lag, statuses: statuses}); err != nil {
		return fmt.Errorf("api: register read model metrics: %w", err)
	}
	return nil
}
