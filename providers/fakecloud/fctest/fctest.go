// Package fctest is the emulator of FakeCloud, the made-up vendor of package fakecloud: a
// small JSON API on loopback built on the emulators' shared skeleton, for the cross-vendor
// tests only. Its shape is plain on purpose (REST paths, {"error","code"} refusals, one
// X-Api-Key header), so that it stands for any fourth cloud rather than for a real one.
//
//	GET    /v1/offers                    {"offers":[offer]}
//	GET    /v1/images?offer=ID           {"images":[image]}: the public ones and the account's own
//	GET    /v1/machines                  {"machines":[machine]}
//	GET    /v1/machines/{id}             machine
//	POST   /v1/machines                  {"offer","image","gpus","name"} -> machine
//	POST   /v1/machines/{id}/{action}    start, stop, restart -> machine
//	POST   /v1/machines/{id}/snapshot    {"name"} -> {"image": id}, ready after StepDelay
//	DELETE /v1/machines/{id}             {}
//
// Statuses: creating -> running; stopping -> stopped; starting -> running; restarting ->
// running; deleting -> gone; failed (LaunchFails). A stop is accepted while creating or
// starting too, so that a machine that never comes up can be stopped, then deleted; delete
// needs stopped or failed. Every machine is a real SSH server (providers/machinetest) that
// serves while it is running.
package fctest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/emu"
)

// DemoAPIKey is the key the emulator accepts, in the X-Api-Key header.
const DemoAPIKey = "fc-demo-0123456789abcdef"

// Options configures a Server.
type Options struct {
	StepDelay time.Duration
	Now       func() time.Time
	Wrap      func(http.Handler) http.Handler
}

type offer struct {
	ID        string  `json:"id"`
	GPU       string  `json:"gpu"`
	VRAMGB    int     `json:"vram_gb"`
	Counts    []int   `json:"gpu_counts"`
	PriceHour float64 `json:"price_hour"`
	Free      int     `json:"free_gpus"`
}

type image struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Kind    string `json:"kind"` // public or private
	Ready   bool   `json:"ready"`
	readyAt time.Time
}

type sshInfo struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	User     string `json:"user"`
	Password string `json:"password"`
}

type machine struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Offer     string    `json:"offer"`
	GPU       string    `json:"gpu"`
	GPUs      int       `json:"gpus"`
	Image     string    `json:"image"`
	PriceHour float64   `json:"price_hour"`
	Created   time.Time `json:"created"`
	SSH       sshInfo   `json:"ssh"`
	steps     emu.Steps[string]
}

// Server is a running emulator; the embedded skeleton's lock guards the fields below.
type Server struct {
	*emu.Server
	offers   []*offer
	images   []*image
	machines map[string]*machine
	order    []string
	seq      int
}

// Emulate starts an emulator for the vendor list; the variables are the adapter's, without
// their prefix.
func Emulate(o emulated.Options) (emulated.Server, map[string]string) {
	s := NewServer(Options{StepDelay: o.StepDelay, Now: o.Now, Wrap: o.Wrap})
	return s, map[string]string{"API_KEY": s.Credential(), "BASE_URL": s.URL()}
}

// Endpoints are the emulated requests that tests aim faults at.
var Endpoints = emulated.Endpoints{Offers: "/v1/offers", OfferReads: 1, Buy: emulated.Faults{Method: http.MethodPost, Path: "/v1/machines"}}

// NewServer starts an emulator on loopback.
func NewServer(opts Options) *Server {
	s := &Server{machines: map[string]*machine{}, images: []*image{
		{ID: "ubuntu-22.04-cuda12", Name: "Ubuntu 22.04, CUDA 12", Kind: "public", Ready: true},
		{ID: "pytorch-2.3", Name: "PyTorch 2.3", Kind: "public", Ready: true},
	}, offers: []*offer{
		{ID: "fx1-a", GPU: "Fake X1", VRAMGB: 24, Counts: []int{1, 2, 4}, PriceHour: 1.00, Free: 8},
		{ID: "fx1-b", GPU: "Fake X1", VRAMGB: 24, Counts: []int{1, 2, 4}, PriceHour: 1.25, Free: 8},
		{ID: "fx9", GPU: "Fake X9", VRAMGB: 80, Counts: []int{1, 8}, PriceHour: 9.50, Free: 8},
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/offers", func(w http.ResponseWriter, r *http.Request) { reply(w, map[string]any{"offers": s.offers}) })
	mux.HandleFunc("GET /v1/images", s.listImages)
	mux.HandleFunc("GET /v1/machines", s.listMachines)
	mux.HandleFunc("GET /v1/machines/{id}", s.withMachine(func(w http.ResponseWriter, _ *http.Request, m *machine) { reply(w, m) }))
	mux.HandleFunc("POST /v1/machines", s.create)
	mux.HandleFunc("POST /v1/machines/{id}/{action}", s.withMachine(s.act))
	mux.HandleFunc("DELETE /v1/machines/{id}", s.withMachine(s.delete))
	s.Server = emu.New(emu.Options{Vendor: "fakecloud", Credential: DemoAPIKey, StepDelay: opts.StepDelay, Now: opts.Now,
		Settle: s.settle, IsChange: func(r *http.Request) bool { return r.Method != http.MethodGet }, Wrap: opts.Wrap},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Api-Key") != s.Credential() {
				refuse(w, http.StatusUnauthorized, "auth", "missing or wrong X-Api-Key")
				return
			}
			mux.ServeHTTP(w, r)
		}))
	return s
}

// Status is the status of machine id, after the due transitions.
func (s *Server) Status(id string) (string, bool) {
	s.Lock()
	defer s.Unlock()
	s.settle(s.Now())
	m, ok := s.machines[id]
	if !ok {
		return "", false
	}
	return m.Status, true
}

func (s *Server) settle(now time.Time) {
	for _, id := range slices.Clone(s.order) {
		m := s.machines[id]
		if m.steps.Advance(now, &m.Status) {
			s.free(m.Offer, m.GPUs)
			delete(s.machines, id)
			s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
			s.Forget(id)
		}
	}
	for _, im := range s.images {
		im.Ready = !now.Before(im.readyAt)
	}
}

func (s *Server) free(offerID string, gpus int) {
	if o := s.offer(offerID); o != nil {
		o.Free += gpus
	}
}

func (s *Server) offer(id string) *offer {
	i := slices.IndexFunc(s.offers, func(o *offer) bool { return o.ID == id })
	if i < 0 {
		return nil
	}
	return s.offers[i]
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status int, code, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...), "code": code})
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	if o := r.URL.Query().Get("offer"); o != "" && s.offer(o) == nil {
		refuse(w, http.StatusNotFound, "not_found", "offer %s not found", o)
		return
	}
	reply(w, map[string]any{"images": s.images})
}

func (s *Server) listMachines(w http.ResponseWriter, _ *http.Request) {
	out := []*machine{}
	for _, id := range s.order {
		out = append(out, s.machines[id])
	}
	reply(w, map[string]any{"machines": out})
}

func (s *Server) withMachine(h func(http.ResponseWriter, *http.Request, *machine)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, ok := s.machines[r.PathValue("id")]
		if !ok {
			refuse(w, http.StatusNotFound, "not_found", "machine %s not found", r.PathValue("id"))
			return
		}
		h(w, r, m)
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Offer, Image, Name string
		GPUs               int
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		refuse(w, http.StatusBadRequest, "invalid", "body: %v", err)
		return
	}
	o := s.offer(req.Offer)
	switch {
	case o == nil:
		refuse(w, http.StatusNotFound, "not_found", "offer %s not found", req.Offer)
		return
	case !slices.Contains(o.Counts, req.GPUs):
		refuse(w, http.StatusBadRequest, "invalid", "offer %s takes %v GPUs, not %d", o.ID, o.Counts, req.GPUs)
		return
	case !slices.ContainsFunc(s.images, func(im *image) bool { return im.ID == req.Image && im.Ready }):
		refuse(w, http.StatusBadRequest, "invalid", "image %s not found", req.Image)
		return
	case s.Outcome(o.ID) == emu.LaunchSoldOut || o.Free < req.GPUs:
		refuse(w, http.StatusConflict, "sold_out", "offer %s is sold out", o.ID)
		return
	}
	s.seq++
	now := s.Now()
	m := &machine{ID: fmt.Sprintf("m-%04d", s.seq), Name: req.Name, Offer: o.ID, GPU: o.GPU, GPUs: req.GPUs, Image: req.Image,
		PriceHour: o.PriceHour * float64(req.GPUs), Created: now, SSH: sshInfo{User: "root", Password: fmt.Sprintf("fc-pw-%04d", s.seq)}}
	ep, err := s.Listen(m.ID, emu.Machine{User: m.SSH.User, Password: m.SSH.Password, GPUModel: m.GPU, GPUCount: m.GPUs, GPUMemoryMiB: o.VRAMGB * 1024}, func() bool {
		st, ok := m.steps.At(s.Now(), m.Status)
		return ok && st == "running"
	})
	if err != nil {
		refuse(w, http.StatusInternalServerError, "internal", "no SSH port: %v", err)
		return
	}
	m.SSH.Host, m.SSH.Port = ep.Host(), ep.Port()
	o.Free -= req.GPUs
	switch s.Outcome(o.ID) {
	case emu.LaunchNeverRuns:
		m.Status = "creating"
	case emu.LaunchFails:
		m.steps.Walk(&m.Status, now, s.StepDelay(), "creating", "failed")
	default:
		m.steps.Walk(&m.Status, now, s.StepDelay(), "creating", "running")
	}
	s.machines[m.ID] = m
	s.order = append(s.order, m.ID)
	w.WriteHeader(http.StatusCreated)
	reply(w, m)
}

// transitions are the actions on a machine: the statuses it may be in, and where it goes.
var transitions = map[string]struct {
	from        []string
	via, target string
}{
	"start":   {[]string{"stopped"}, "starting", "running"},
	"stop":    {[]string{"running", "creating", "starting"}, "stopping", "stopped"},
	"restart": {[]string{"running"}, "restarting", "running"},
}

func (s *Server) act(w http.ResponseWriter, r *http.Request, m *machine) {
	action := r.PathValue("action")
	if action == "snapshot" {
		s.snapshot(w, r, m)
		return
	}
	t, ok := transitions[action]
	switch {
	case !ok:
		refuse(w, http.StatusNotFound, "not_found", "no action %s", action)
	case !slices.Contains(t.from, m.Status):
		refuse(w, http.StatusConflict, "conflict", "machine %s is %s; %s needs %s", m.ID, m.Status, action, strings.Join(t.from, " or "))
	default:
		m.steps.Walk(&m.Status, s.Now(), s.StepDelay(), t.via, t.target)
		reply(w, m)
	}
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request, m *machine) {
	var req struct{ Name string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" {
		refuse(w, http.StatusBadRequest, "invalid", "a snapshot needs a name")
		return
	}
	if m.Status != "running" && m.Status != "stopped" {
		refuse(w, http.StatusConflict, "conflict", "machine %s is %s; a snapshot needs running or stopped", m.ID, m.Status)
		return
	}
	s.seq++
	im := &image{ID: fmt.Sprintf("snap-%04d", s.seq), Name: req.Name, Kind: "private", readyAt: s.Now().Add(s.StepDelay())}
	im.Ready = s.StepDelay() <= 0
	s.images = append(s.images, im)
	reply(w, map[string]string{"image": im.ID})
}

func (s *Server) delete(w http.ResponseWriter, _ *http.Request, m *machine) {
	if m.Status != "stopped" && m.Status != "failed" {
		refuse(w, http.StatusConflict, "conflict", "machine %s is %s; delete needs stopped or failed", m.ID, m.Status)
		return
	}
	m.steps.Walk(&m.Status, s.Now(), s.StepDelay(), "deleting")
	m.steps.ThenGone(s.Now(), s.StepDelay())
	reply(w, map[string]string{})
}
