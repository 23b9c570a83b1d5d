package esdb

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ansinh/ansinh/eventstore"
	"go.yaml.in/yaml/v4"
)

// TestComposeFile checks what docker-compose.yml must hold for this adapter
// to work, since no Docker engine runs where the tests run (schema
// validation is `docker compose config -q`, see docs/deploy.md): the node
// settings the port depends on, a connection string the client library
// accepts, and replicas that do not share their projections.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Profiles    []string          `yaml:"profiles"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   map[string]any    `yaml:"depends_on"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	svc := file.Services

	t.Run("single node", func(t *testing.T) {
		es, ok := svc["eventstore"]
		if !ok {
			t.Fatal("no eventstore service; the contract test's skip message names it")
		}
		if len(es.Profiles) != 0 {
			t.Errorf("eventstore has profiles %v; `docker compose up -d eventstore` should need none", es.Profiles)
		}
		if es.Environment["KURRENTDB_INSECURE"] != "true" {
			t.Error("eventstore must be insecure: the documented ESDB_URL has tls=false")
		}
	})

	nodes := []string{"node1", "node2", "node3"}
	t.Run("nodes", func(t *testing.T) {
		for _, name := range append([]string{"eventstore"}, nodes...) {
			env := svc[name].Environment
			size, err := strconv.Atoi(env["KURRENTDB_MAX_APPEND_SIZE"])
			// The server counts whole gRPC messages (IDs, types, framing);
			// demand a quarter more than the port's data limit.
			if err != nil || size < eventstore.MaxAppendBytes*5/4 {
				t.Errorf("%s: KURRENTDB_MAX_APPEND_SIZE %q; need at least %d so that every Append the port allows fits",
					name, env["KURRENTDB_MAX_APPEND_SIZE"], eventstore.MaxAppendBytes*5/4)
			}
			if len(svc[name].Healthcheck.Test) == 0 {
				t.Errorf("%s has no health check", name)
			}
		}
		for _, name := range nodes {
			s := svc[name]
			env := s.Environment
			if !slices.Contains(s.Profiles, "cluster") {
				t.Errorf("%s is not in the cluster profile", name)
			}
			if env["KURRENTDB_CLUSTER_SIZE"] != "3" {
				t.Errorf("%s: cluster size %q, want 3", name, env["KURRENTDB_CLUSTER_SIZE"])
			}
			if env["KURRENTDB_INSECURE"] == "true" {
				t.Errorf("%s is insecure; the cluster uses TLS", name)
			}
			var seeds []string
			for _, seed := range strings.Split(env["KURRENTDB_GOSSIP_SEED"], ",") {
				seeds = append(seeds, strings.TrimSuffix(seed, ":2113"))
			}
			others := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == name })
			if !slices.Equal(seeds, others) {
				t.Errorf("%s gossips with %v, want the other nodes %v", name, seeds, others)
			}
			if !strings.Contains(env["KURRENTDB_CERTIFICATE_FILE"], "/"+name+"/") {
				t.Errorf("%s uses certificate %q, not its own", name, env["KURRENTDB_CERTIFICATE_FILE"])
			}
			if env["KURRENTDB_NODE_HOST_ADVERTISE_AS"] != name {
				t.Errorf("%s advertises itself as %q; clients check its certificate against that name", name, env["KURRENTDB_NODE_HOST_ADVERTISE_AS"])
			}
			if _, ok := s.DependsOn["certs"]; !ok {
				t.Errorf("%s does not wait for the certs service", name)
			}
		}
	})

	t.Run("replicas", func(t *testing.T) {
		dataVolumes := map[string]string{}
		for _, name := range []string{"ansinh-1", "ansinh-2"} {
			s, ok := svc[name]
			if !ok {
				t.Fatalf("no %s service", name)
			}
			conn := s.Environment["ANSINH_STORE"]
			// The client reads the CA file while parsing; it exists only in
			// the container, so check its path and parse without it.
			const caParam = "tlsCAFile=/certs/ca/ca.crt"
			if !strings.Contains(conn, caParam) || !slices.Contains(s.Volumes, "certs:/certs:ro") {
				t.Errorf("%s: ANSINH_STORE %q does not trust the cluster CA (%s from the certs volume)", name, conn, caParam)
			}
			cfg, err := esdbclient.ParseConnectionString(strings.Replace(conn, caParam, "tlsVerifyCert=true", 1))
			if err != nil {
				t.Fatalf("%s: ANSINH_STORE %q: %v", name, conn, err)
			}
			var hosts []string
			for _, seed := range cfg.GossipSeeds {
				hosts = append(hosts, seed.Host)
			}
			if !slices.Equal(hosts, nodes) {
				t.Errorf("%s seeds gossip from %v, want all of %v so that any one node may be down", name, hosts, nodes)
			}
			if cfg.DisableTLS || cfg.SkipCertificateVerification {
				t.Errorf("%s connects without TLS or without checking certificates", name)
			}
			if cfg.Username == "" {
				t.Errorf("%s connects anonymously; reading $all on a secure cluster needs a user", name)
			}
			for _, dep := range nodes {
				if _, ok := s.DependsOn[dep]; !ok {
					t.Errorf("%s does not wait for %s", name, dep)
				}
			}
			if !slices.Contains(s.Healthcheck.Test, "http://127.0.0.1:8080/healthz") {
				t.Errorf("%s health check %v does not probe /healthz", name, s.Healthcheck.Test)
			}
			for _, v := range s.Volumes {
				src, dst, _ := strings.Cut(v, ":")
				if strings.HasPrefix(dst, s.Environment["ANSINH_DATA"]) && s.Environment["ANSINH_DATA"] != "" {
					if other, dup := dataVolumes[src]; dup {
						t.Errorf("%s and %s share data volume %s; each replica keeps its own projections", name, other, src)
					}
					dataVolumes[src] = name
				}
			}
		}
		if len(dataVolumes) != 2 {
			t.Errorf("replica data volumes %v, want one per replica", dataVolumes)
		}
	})

	t.Run("volumes are declared", func(t *testing.T) {
		for name, s := range svc {
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
					continue // bind mount
				}
				if _, ok := file.Volumes[src]; !ok {
					t.Errorf("%s mounts undeclared volume %q", name, src)
				}
			}
		}
	})
}
