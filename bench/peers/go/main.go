// Command goagg is the Go peer of fanout's throughput scenario: GET /api/d/{id} fetches the
// configured backends concurrently and answers one JSON object with each backend's body under
// its name, in config order. It reads the same generated config as fanout (the first endpoint,
// its backends and timeout_ms), so bench/bench.py runs both on the same nginx in the same round.
//
// DESIGN (the patterns of /work/shared/seed/go-concurrency-patterns.md): a fixed pool of worker
// goroutines reads one jobs channel; each job is one backend call. A request builds its jobs,
// each carrying the request's fan-in channel, and collects the results from that channel until
// all are in or its context.WithTimeout deadline passes. The fan-in channel is buffered to the
// number of backends, so a worker never blocks on a request that has already given up (the
// seed's unbuffered resultCh would leak a goroutine per timeout). Bodies are kept as raw bytes
// (json.RawMessage, checked with json.Valid), so numbers such as 12345678901234567890 pass
// through exactly. Standard library only: net/http server and client with keep-alive, one
// Transport sized for the concurrency.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// config is the subset of fanout's config that the peer uses.
type config struct {
	TimeoutMS int64 `json:"timeout_ms"` // global deadline, when the endpoint has none
	Endpoints []struct {
		Path      string `json:"path"`       // "/api/d/{id}"
		TimeoutMS int64  `json:"timeout_ms"` // deadline of one aggregate request
		Backends  []struct {
			Name string `json:"name"` // key of the body in the answer
			URL  string `json:"url"`  // with "{id}" replaced by the request's id
		} `json:"backends"`
	} `json:"endpoints"`
}

// backend is one configured call, prepared at start.
type backend struct {
	key []byte // the name as a JSON string, with the following ':'
	url string // URL template
}

// job is one backend call of one aggregate request.
type job struct {
	ctx context.Context // the request's deadline
	idx int             // backend index: the result's slot
	url string          // URL with the id filled in
	out chan<- result   // the request's fan-in channel, buffered to len(backends)
}

// result is what a worker sends back for a job.
type result struct {
	idx  int             // backend index
	body json.RawMessage // raw JSON body; nil on error
	err  error           // transport, status or JSON error
}

type server struct {
	prefix   string        // path before "{id}"
	backends []backend     // in config order
	timeout  time.Duration // per aggregate request
	jobs     chan job      // read by the worker pool
	client   *http.Client  // shared, keep-alive
	bufs     sync.Pool     // *bytes.Buffer for answers
}

const maxBody = 1 << 20 // bytes read from one backend

func (s *server) worker() {
	for j := range s.jobs {
		body, err := s.fetch(j.ctx, j.url)
		j.out <- result{idx: j.idx, body: body, err: err} // never blocks: buffered
	}
}

func (s *server) fetch(ctx context.Context, url string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if len(b) > maxBody {
		return nil, errors.New("body too large")
	}
	if !json.Valid(b) {
		return nil, errors.New("body is not JSON")
	}
	return json.RawMessage(b), nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, s.prefix)
	if r.Method != http.MethodGet || len(id) == len(r.URL.Path) || id == "" ||
		strings.ContainsAny(id, "/?&#%") {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()

	n := len(s.backends)
	out := make(chan result, n) // fan-in; buffered so late workers never block
	sent := 0
	for i, b := range s.backends {
		select {
		case s.jobs <- job{ctx: ctx, idx: i, url: strings.ReplaceAll(b.url, "{id}", id), out: out}:
			sent++
		case <-ctx.Done():
		}
	}
	bodies := make([]json.RawMessage, n)
	got := 0
collect:
	for k := 0; k < sent; k++ {
		select {
		case res := <-out:
			if res.err == nil {
				bodies[res.idx] = res.body
				got++
			}
		case <-ctx.Done():
			break collect
		}
	}
	if got == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, `{"code":"backends_failed","message":"no backend answered"}`)
		return
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	buf.WriteByte('{')
	first := true
	for i, b := range bodies {
		if b == nil {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.Write(s.backends[i].key)
		buf.Write(b)
	}
	buf.WriteByte('}')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Fanout-Complete", fmt.Sprint(got == n))
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.Write(buf.Bytes())
	s.bufs.Put(buf)
}

func main() {
	cfgPath := flag.String("c", "", "fanout config file (first endpoint is served)")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	workers := flag.Int("workers", 256, "worker goroutines (concurrent backend calls)")
	flag.Parse()
	raw, err := os.ReadFile(*cfgPath)
	if err != nil {
		log.Fatal(err)
	}
	var cfg config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		log.Fatal(err)
	}
	if len(cfg.Endpoints) == 0 || len(cfg.Endpoints[0].Backends) == 0 {
		log.Fatal("config: no endpoint with backends")
	}
	ep := cfg.Endpoints[0]
	ms := ep.TimeoutMS
	if ms <= 0 {
		ms = cfg.TimeoutMS
	}
	if ms <= 0 {
		ms = 1000
	}
	s := &server{
		prefix:  strings.TrimSuffix(ep.Path, "{id}"),
		timeout: time.Duration(ms) * time.Millisecond,
		jobs:    make(chan job, *workers),
		bufs:    sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
	for _, b := range ep.Backends {
		k, _ := json.Marshal(b.Name)
		s.backends = append(s.backends, backend{key: append(k, ':'), url: b.URL})
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: s.timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        *workers,
		MaxIdleConnsPerHost: *workers, // all backends share one host:port here
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	s.client = &http.Client{Transport: tr}
	for i := 0; i < *workers; i++ {
		go s.worker()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// The same start-up line as fanout, so the benchmark finds the port the same way.
	fmt.Printf("{\"event\":\"listening\",\"port\":%d}\n", ln.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	// SIGTERM or SIGINT: stop accepting, let answers in flight finish, exit 0.
	sig, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-sig.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
