// Package deploy_test checks the operator files in deploy/ and
// docs/operating.md against a running node: every metric they name must
// be one the node exports, and every Umbra metric must be documented.
package deploy_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/wire"
)

// metricRef matches what looks like a metric name of the node's
// exporters: Umbra's own, the Go and process collectors, and libp2p's.
var metricRef = regexp.MustCompile(`\b(?:umbra|go|process|libp2p)_[a-z0-9_]*[a-z0-9]\b`)

// exported starts a node on loopback and returns the names its /metrics
// serves, with the _bucket, _sum and _count series of histograms and
// summaries, and Prometheus's own up.
func exported(t *testing.T) (names map[string]bool, families []string) {
	t.Helper()
	nd, err := node.New(node.Config{
		DataDir: t.TempDir(),
		Listen:  []string{"/ip4/127.0.0.1/tcp/0"},
		Admin:   "127.0.0.1:0",
		Params:  wire.Params{Network: "deploy-test", Replication: 5, PoWBits: 4},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + nd.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names = map[string]bool{"up": true}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		name, typ := f[2], f[3]
		names[name] = true
		families = append(families, name)
		switch typ {
		case "histogram":
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case "summary":
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(families) < 20 {
		t.Fatalf("/metrics has %d families", len(families))
	}
	return names, families
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// exprs collects the PromQL of a Grafana dashboard: every "expr" and
// every variable "definition".
func exprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
				*out = append(*out, s)
			} else {
				exprs(x, out)
			}
		}
	case []any:
		for _, x := range v {
			exprs(x, out)
		}
	}
}

func TestMetricNamesExist(t *testing.T) {
	names, families := exported(t)

	var dash map[string]any
	if err := json.Unmarshal([]byte(read(t, "grafana/umbra-node.json")), &dash); err != nil {
		t.Fatalf("grafana/umbra-node.json: %v", err)
	}
	var queries []string
	exprs(dash, &queries)
	if len(queries) < 10 {
		t.Fatalf("dashboard has %d queries", len(queries))
	}
	for _, q := range queries {
		if len(metricRef.FindAllString(q, -1)) == 0 && !strings.Contains(q, "up{") {
			t.Errorf("dashboard query names no metric: %s", q)
		}
	}

	alerts := read(t, "prometheus/alerts.yml")
	nAlerts, nExprs := 0, 0
	for _, l := range strings.Split(alerts, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "- alert: ") {
			nAlerts++
		}
		if strings.HasPrefix(l, "expr: ") {
			nExprs++
		}
	}
	if nAlerts < 4 || nAlerts != nExprs {
		t.Errorf("alerts.yml: %d alerts, %d exprs", nAlerts, nExprs)
	}

	doc := read(t, "../docs/operating.md")
	for file, text := range map[string]string{
		"grafana/umbra-node.json": strings.Join(queries, "\n"),
		"prometheus/alerts.yml":   alerts,
		"docs/operating.md":       doc,
	} {
		seen := map[string]bool{}
		for _, m := range metricRef.FindAllString(text, -1) {
			if !names[m] && !seen[m] {
				t.Errorf("%s names %s, which the node does not export", file, m)
			}
			seen[m] = true
		}
	}

	// Every Umbra metric is in the documentation's table.
	for _, f := range families {
		if strings.HasPrefix(f, "umbra_") && !strings.Contains(doc, "| `"+f+"` |") {
			t.Errorf("docs/operating.md does not document %s", f)
		}
	}
	if !slices.Contains(families, "umbra_store_quota_bytes") {
		t.Error("umbra_store_quota_bytes is not exported")
	}
}
