// Package hxytest is an in-process emulator of HuiXingYun's GPU API (vendor-api.md section
// 2), like net/http/httptest: tests and the --demo mode run the huixingyun adapter against it.
//
// It is stateful and follows the document: POST only, the bare token in the Authorization
// header, {"items":...,"total_items":N} lists (the instance list with a string "total"),
// {"success":[...],"fails":[...]} batch answers, numbers as strings where the document shows
// them (size.gpu, size.disk_free, total), RFC 3339 +08:00 times. Request integers are
// accepted as numbers or numeric strings.
//
// Where the document is silent, the emulator guesses, and says so here:
//   - errors: a wrong or missing token gets 401 {"message":"invalid token"}; a malformed
//     request (missing or invalid field, unknown gpu_type, image or app) gets 400
//     {"message":"..."}; an unknown path 404, a method other than POST 405;
//   - a refusal for one instance of a batch is a fails element {"gid":...,"message":...};
//     a buy that cannot be served (gpu_count above gpu_remain) is {"message":...};
//   - a snapshot refusal is 200 {"success":false,"message":...};
//   - status vocabulary: Creating -> Running, Stopping -> Stopped, Starting -> Running,
//     Restarting -> Running, Destroying -> (gone); pay_method Hour, Day or Month;
//   - an hourly instance has an empty expire_at; one-click apps run on AppGPUType;
//   - a saved image shows in /gpu/images/mine once StepDelay has passed;
//   - a stop is accepted while an instance is Creating or Starting as well as Running (it
//     aborts the boot), so that an instance that never comes up can be stopped, then, if
//     billed by the hour, destroyed; the document states no rule for it;
//   - a buy refused for lack of capacity (SetGPURemain, emu.LaunchSoldOut) is a fails element
//     {"message":"insufficient GPUs ..."} with fail_instance counted; the document has no
//     failure status, so emu.LaunchFails behaves like emu.LaunchNeverRuns.
//
// Every instance has a real machine (providers/machinetest) on 127.0.0.1, bound when it is
// bought: the list reports ip "127.0.0.1" and its port, and the machine serves SSH (the
// instance's username and password, a host key of its own, /bin/sh in a sandbox, sftp, an
// nvidia-smi that reports the product's GPUs) exactly while the instance is Running. A stop
// or a restart halts it (its processes die, its disk stays); a destroy deletes it; a rebuild
// gives it a new host key, as a new system disk does.
package hxytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/emu"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

// DemoToken is the API token the emulator accepts unless Options.Token says otherwise. It is
// a fixed, public demo value.
const DemoToken = "2292c8da-bac5-4e11-9a7d-2cd2e6a0ae30"

// Options configures a Server.
type Options struct {
	// StepDelay is how long each transitional state (Creating, Stopping, Starting,
	// Restarting, Destroying, an image being saved) lasts. 0 completes them at once: the
	// next request sees the final state. Transitions are computed on each request.
	StepDelay time.Duration
	// Token overrides DemoToken.
	Token string
	// Now overrides the clock (tests).
	Now func() time.Time
	// Wrap, when set, serves the API through it (tests).
	Wrap func(http.Handler) http.Handler
}

// Status values the emulator uses.
const (
	StatusCreating   = "Creating"
	StatusRunning    = "Running"
	StatusStopping   = "Stopping"
	StatusStopped    = "Stopped"
	StatusStarting   = "Starting"
	StatusRestarting = "Restarting"
	StatusDestroying = "Destroying"
)

// Pay methods, as the list reports them.
const (
	PayHour  = "Hour"
	PayDay   = "Day"
	PayMonth = "Month"
)

// Stop modes of a stopped instance.
const (
	StopNormal   = "normal"
	StopCardless = "cardless"
)

// Instance is a copy of the emulator's record of an instance.
type Instance struct {
	GID       string
	Name      string
	Status    string
	PayMethod string
	StopMode  string // "" unless stopped: StopNormal or StopCardless
	RoomName  string
	GPUType   string
	GPUCount  int
	ImageID   string
	ImageName string
	AppType   string
	OrderUID  string
	CreatedAt time.Time
	ExpireAt  time.Time // zero for hourly billing
	IP        string
	Port      int
	Username  string
	Password  string
}

// Image is a copy of one of the account's own images.
type Image struct {
	ImageID     string
	Name        string
	RoomName    string
	Description string
	SourceGID   string // the instance it was saved from; "" for the starting ones
	Ready       bool   // listed by /gpu/images/mine
}

// Server is a running emulator. It is safe for concurrent use; the embedded skeleton's lock
// guards the fields below.
type Server struct {
	*emu.Server

	products  []*productJSON
	apps      []appJSON
	own       []*ownImage
	instances map[string]*instance
	seq       int
}

type ownImage struct {
	imageJSON
	source  string
	readyAt time.Time
}

type instance struct {
	Instance
	product   *productJSON
	extra     int // extra data disk, GB
	imageDesc string
	steps     emu.Steps[string]
	machine   *machinetest.Machine
}

var cst = time.FixedZone("CST", 8*3600)

// vendorName is the vendor name the SSH banners carry.
const vendorName = "huixingyun"

// Emulate starts an emulator for the vendor list (providers.Vendor); the variables are the
// adapter's, without their prefix.
func Emulate(o emulated.Options) (emulated.Server, map[string]string) {
	s := NewServer(Options{StepDelay: o.StepDelay, Now: o.Now, Wrap: o.Wrap})
	return s, map[string]string{"TOKEN": s.Credential(), "BASE_URL": s.URL()}
}

// Endpoints are the emulated requests that tests aim faults at: the product list and the buy.
var Endpoints = emulated.Endpoints{Offers: "/gpu/product/list", OfferReads: 1, Buy: emulated.Faults{Method: http.MethodPost, Path: "/gpu/instances/buy"}}

// NewServer starts an emulator on a loopback port.
func NewServer(opts Options) *Server {
	s := &Server{
		products:  startingProducts(),
		apps:      startingApps(),
		own:       startingOwnImages(),
		instances: map[string]*instance{},
	}
	if opts.Token == "" {
		opts.Token = DemoToken
	}
	s.Server = emu.New(emu.Options{Vendor: vendorName, Credential: opts.Token, StepDelay: opts.StepDelay, Now: opts.Now,
		Settle: s.settle, IsChange: s.isChange, Wrap: opts.Wrap}, http.HandlerFunc(s.serve))
	return s
}

// isChange tells the requests that change something: every POST but the lists'.
func (s *Server) isChange(r *http.Request) bool {
	switch r.URL.Path {
	case "/gpu/product/list", "/gpu/application/list", "/gpu/images/list", "/gpu/images/mine", "/gpu/instances/list":
		return false
	}
	return true
}

// sshReady is the readiness of in's endpoint: whether it is Running now. It looks at due
// transitions without applying them, so it never removes an instance.
func (s *Server) sshReady(in *instance) bool {
	status, ok := in.steps.At(s.Now(), in.Status)
	return ok && status == StatusRunning
}

// Instance returns a copy of the record of gid, after applying due transitions.
func (s *Server) Instance(gid string) (Instance, bool) {
	s.Lock()
	defer s.Unlock()
	s.settle(s.Now())
	in, ok := s.instances[gid]
	if !ok {
		return Instance{}, false
	}
	return in.Instance, true
}

// Instances returns copies of every instance, oldest first.
func (s *Server) Instances() []Instance {
	s.Lock()
	defer s.Unlock()
	s.settle(s.Now())
	var out []Instance
	for _, in := range s.sortedInstances() {
		out = append(out, in.Instance)
	}
	return out
}

// Images returns copies of the account's own images, saved ones included.
func (s *Server) Images() []Image {
	s.Lock()
	defer s.Unlock()
	now := s.Now()
	out := make([]Image, 0, len(s.own))
	for _, im := range s.own {
		out = append(out, Image{ImageID: im.ImageID, Name: im.Name, RoomName: im.RoomName, Description: im.Description,
			SourceGID: im.source, Ready: !now.Before(im.readyAt)})
	}
	return out
}

// GPURemain returns the gpu_remain of a product.
func (s *Server) GPURemain(gpuType string) (int, bool) {
	s.Lock()
	defer s.Unlock()
	if p := s.product(gpuType); p != nil {
		return p.GPURemain, true
	}
	return 0, false
}

// SetGPURemain changes the gpu_remain of a product (tests of sold-out products).
func (s *Server) SetGPURemain(gpuType string, n int) bool {
	s.Lock()
	defer s.Unlock()
	if p := s.product(gpuType); p != nil {
		p.GPURemain = n
		return true
	}
	return false
}

// apiError is a 4xx answer.
type apiError struct {
	status int
	msg    string
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// serve answers one request; the skeleton holds the lock and has applied due transitions.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Authorization") != s.Credential() {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "invalid token"})
		return
	}
	h, ok := s.routes()[r.URL.Path]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found: " + r.URL.Path})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "method not allowed: use POST"})
		return
	}
	req, err := parseBody(body)
	if err != nil {
		writeJSON(w, err.status, map[string]string{"message": err.msg})
		return
	}
	out, err := h(req, s.Now())
	if err != nil {
		writeJSON(w, err.status, map[string]string{"message": err.msg})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type handler func(req fields, now time.Time) (any, *apiError)

func (s *Server) routes() map[string]handler {
	return map[string]handler{
		"/gpu/product/list":             s.productList,
		"/gpu/application/list":         s.appList,
		"/gpu/images/list":              s.imagesList,
		"/gpu/images/mine":              s.imagesMine,
		"/gpu/instances/buy":            s.buy,
		"/gpu/application/buy":          s.appBuy,
		"/gpu/instances/list":           s.instanceList,
		"/gpu/instances/stop":           s.stop,
		"/gpu/instances/restart":        s.restart,
		"/gpu/instances/start":          s.startNormal,
		"/gpu/instances/cardless/start": s.startCardless,
		"/gpu/instance/snapshot":        s.snapshot,
		"/gpu/instances/rebuild":        s.rebuild,
		"/gpu/instances/destroy":        s.destroy,
		"/gpu/instances/lengthen":       s.lengthen,
		"/gpu/instances/renew":          s.renew,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fields is a decoded request body.
type fields map[string]json.RawMessage

func parseBody(b []byte) (fields, *apiError) {
	f := fields{}
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, badRequest("request body is not a JSON object: %v", err)
	}
	return f, nil
}

func (f fields) str(key string) (string, *apiError) {
	raw, ok := f[key]
	if !ok || string(raw) == "null" {
		return "", badRequest("%s is required", key)
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", badRequest("%s must be a string", key)
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", badRequest("%s is required", key)
	}
	return v, nil
}

// int accepts 1 and "1" alike, since the document's table says int and its examples send
// strings.
func (f fields) int(key string, required bool) (int, bool, *apiError) {
	raw, ok := f[key]
	if !ok || string(raw) == "null" {
		if required {
			return 0, false, badRequest("%s is required", key)
		}
		return 0, false, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return n, true, nil
		}
	}
	return 0, false, badRequest("%s must be an integer", key)
}

func (f fields) boolean(key string) (bool, *apiError) {
	raw, ok := f[key]
	if !ok {
		return false, badRequest("%s is required", key)
	}
	var v bool
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, badRequest("%s must be true or false", key)
	}
	return v, nil
}

// gids reads the comma-separated gid field.
func (f fields) gids() ([]string, *apiError) {
	v, err := f.str("gid")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range strings.Split(v, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return nil, badRequest("gid is required")
	}
	return out, nil
}

// batch is the {"fails":[...],"success":[...]} answer of the instance actions.
type batch struct {
	Fails   []failJSON `json:"fails"`
	Success []string   `json:"success"`
}

type failJSON struct {
	GID     string `json:"gid,omitempty"`
	Message string `json:"message"`
}

func newBatch() *batch { return &batch{Fails: []failJSON{}, Success: []string{}} }

func (b *batch) fail(gid, format string, args ...any) {
	b.Fails = append(b.Fails, failJSON{GID: gid, Message: fmt.Sprintf(format, args...)})
}

// each applies fn to every gid, answering "instance not found" for unknown ones.
func (s *Server) each(gids []string, fn func(in *instance, b *batch)) *batch {
	b := newBatch()
	for _, g := range gids {
		in, ok := s.instances[g]
		if !ok {
			b.fail(g, "instance %s not found", g)
			continue
		}
		fn(in, b)
	}
	return b
}

// settle applies every transition due at now.
func (s *Server) settle(now time.Time) {
	for gid, in := range s.instances {
		if in.steps.Advance(now, &in.Status) {
			delete(s.instances, gid)
			s.Forget(gid)
		}
	}
}

// walk puts in into a transitional status that becomes final after StepDelay.
func (s *Server) walk(in *instance, now time.Time, transitional, final string) {
	in.steps.Walk(&in.Status, now, s.StepDelay(), transitional, final)
}

// remove puts in into a transitional status, after which it is gone.
func (s *Server) remove(in *instance, now time.Time, transitional string) {
	in.steps.Walk(&in.Status, now, s.StepDelay(), transitional)
	in.steps.ThenGone(now, s.StepDelay())
}

func (s *Server) product(gpuType string) *productJSON {
	for _, p := range s.products {
		if p.GPUType == gpuType {
			return p
		}
	}
	return nil
}

func (s *Server) sortedInstances() []*instance {
	out := make([]*instance, 0, len(s.instances))
	for _, in := range s.instances {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].GID < out[j].GID
	})
	return out
}

func (s *Server) productList(fields, time.Time) (any, *apiError) {
	items := make([]productJSON, len(s.products))
	for i, p := range s.products {
		items[i] = *p
	}
	return map[string]any{"items": items, "total_items": len(items)}, nil
}

func (s *Server) appList(fields, time.Time) (any, *apiError) {
	return map[string]any{"items": s.apps, "total_items": len(s.apps)}, nil
}

func (s *Server) imagesList(f fields, _ time.Time) (any, *apiError) {
	t, err := f.str("gpu_type")
	if err != nil {
		return nil, err
	}
	p := s.product(t)
	if p == nil {
		return nil, badRequest("unknown gpu_type %s", t)
	}
	imgs := publicImages(p.RoomName)
	return map[string]any{"items": imgs, "total_items": len(imgs)}, nil
}

func (s *Server) imagesMine(f fields, now time.Time) (any, *apiError) {
	room, err := f.str("room_name")
	if err != nil {
		return nil, err
	}
	items := []imageJSON{}
	for _, im := range s.own {
		if im.RoomName == room && !now.Before(im.readyAt) {
			items = append(items, im.imageJSON)
		}
	}
	return map[string]any{"items": items, "total_items": len(items)}, nil
}

// findImage looks an image up among the public images of gpuType's zone and the own images
// of the zone.
func (s *Server) findImage(room, id string, now time.Time) (imageJSON, bool) {
	for _, im := range publicImages(room) {
		if im.ImageID == id {
			return im, true
		}
	}
	for _, im := range s.own {
		if im.RoomName == room && im.ImageID == id && !now.Before(im.readyAt) {
			return im.imageJSON, true
		}
	}
	return imageJSON{}, false
}

func payMethodOf(unit int) (string, bool) {
	switch unit {
	case 4:
		return PayHour, true
	case 1:
		return PayDay, true
	case 2:
		return PayMonth, true
	}
	return "", false
}

// buyAnswer is the answer of both buys.
type buyAnswer struct {
	SuccessInstance int         `json:"success_instance"`
	FailInstance    int         `json:"fail_instance"`
	Success         []orderJSON `json:"success"`
	Fails           []failJSON  `json:"fails"`
}

type orderJSON struct {
	OrderUID string `json:"order_uid"`
}

func (s *Server) buy(f fields, now time.Time) (any, *apiError) {
	imageID, err := f.str("image_id")
	if err != nil {
		return nil, err
	}
	gpuType, err := f.str("gpu_type")
	if err != nil {
		return nil, err
	}
	room, err := f.str("room_name")
	if err != nil {
		return nil, err
	}
	num, _, err := f.int("num", true)
	if err != nil {
		return nil, err
	}
	count, _, err := f.int("gpu_count", true)
	if err != nil {
		return nil, err
	}
	unit, _, err := f.int("pay_unit", true)
	if err != nil {
		return nil, err
	}
	extra, _, err := f.int("extra_disk_cap", false)
	if err != nil {
		return nil, err
	}
	p := s.product(gpuType)
	switch {
	case p == nil:
		return nil, badRequest("unknown gpu_type %s", gpuType)
	case p.RoomName != room:
		return nil, badRequest("gpu_type %s is in room %s, not %s", gpuType, p.RoomName, room)
	case num < 1 || num > 10:
		return nil, badRequest("num must be between 1 and 10")
	case count < 1 || count > 8:
		return nil, badRequest("gpu_count must be between 1 and 8")
	case extra < 0 || extra%100 != 0 || extra > p.DiskCap:
		return nil, badRequest("extra_disk_cap must be a multiple of 100 up to %d", p.DiskCap)
	}
	pay, ok := payMethodOf(unit)
	if !ok {
		return nil, badRequest("pay_unit must be 4 (hour), 1 (day) or 2 (month)")
	}
	img, ok := s.findImage(room, imageID, now)
	if !ok {
		return nil, badRequest("image %s not found in room %s", imageID, room)
	}
	return s.order(now, num, p, count, pay, img, extra, "")
}

func (s *Server) appBuy(f fields, now time.Time) (any, *apiError) {
	appType, err := f.str("app_type")
	if err != nil {
		return nil, err
	}
	num, _, err := f.int("num", true)
	if err != nil {
		return nil, err
	}
	unit, _, err := f.int("pay_unit", true)
	if err != nil {
		return nil, err
	}
	if num < 1 || num > 10 {
		return nil, badRequest("num must be between 1 and 10")
	}
	pay, ok := payMethodOf(unit)
	if !ok {
		return nil, badRequest("pay_unit must be 4 (hour), 1 (day) or 2 (month)")
	}
	found := false
	for _, a := range s.apps {
		found = found || a.AppType == appType
	}
	if !found {
		return nil, badRequest("unknown app_type %s", appType)
	}
	p := s.product(AppGPUType)
	img := imageJSON{Name: "app-" + appType + "_20240525", ImageID: uuidOf("app/" + appType), Scene: "Gpu", OS: "linux",
		Description: baseSoftware + " " + appType + ","}
	return s.order(now, num, p, 1, pay, img, 0, appType)
}

// order creates num instances under one order number, as far as gpu_remain and the launch
// outcome of the product allow.
func (s *Server) order(now time.Time, num int, p *productJSON, count int, pay string, img imageJSON, extra int, appType string) (buyAnswer, *apiError) {
	s.seq++
	order := now.In(cst).Format("20060102150405") + fmt.Sprintf("%06d", s.seq)
	ans := buyAnswer{Success: []orderJSON{}, Fails: []failJSON{}}
	outcome := s.Outcome(p.GPUType)
	for range num {
		if outcome == emu.LaunchSoldOut {
			ans.FailInstance++
			ans.Fails = append(ans.Fails, failJSON{Message: fmt.Sprintf("insufficient GPUs: %s is sold out", p.GPUType)})
			continue
		}
		if count > p.GPURemain {
			ans.FailInstance++
			ans.Fails = append(ans.Fails, failJSON{Message: fmt.Sprintf("insufficient GPUs: %s has %d left, %d asked", p.GPUType, p.GPURemain, count)})
			continue
		}
		s.seq++
		h := sha256.Sum256([]byte(fmt.Sprintf("gid/%d/%s", s.seq, order)))
		in := &instance{product: p, extra: extra, imageDesc: img.Description, Instance: Instance{
			GID:       "gpu-" + p.RoomName + hex.EncodeToString(h[:])[:19],
			Name:      fmt.Sprintf("%s * %d", p.Name, count),
			PayMethod: pay,
			RoomName:  p.RoomName,
			GPUType:   p.GPUType,
			GPUCount:  count,
			ImageID:   img.ImageID,
			ImageName: img.Name,
			AppType:   appType,
			OrderUID:  order,
			CreatedAt: now,
			Username:  "root",
			Password:  "Hxy-" + hex.EncodeToString(h[20:28]),
		}}
		ep, err := s.Listen(in.GID, emu.Machine{User: in.Username, Password: in.Password, GPUModel: p.Name, GPUCount: count, GPUMemoryMiB: p.GPURAM * 1024},
			func() bool { return s.sshReady(in) })
		if err != nil {
			return buyAnswer{}, &apiError{status: http.StatusInternalServerError, msg: "cannot allocate an SSH port: " + err.Error()}
		}
		in.machine, in.IP, in.Port = ep, ep.Host(), ep.Port()
		p.GPURemain -= count
		switch pay {
		case PayDay:
			in.ExpireAt = now.AddDate(0, 0, 1)
		case PayMonth:
			in.ExpireAt = now.AddDate(0, 1, 0)
		}
		if outcome == emu.LaunchNormal {
			s.walk(in, now, StatusCreating, StatusRunning)
		} else {
			in.Status = StatusCreating // emu.LaunchNeverRuns, emu.LaunchFails: no failure status to reach
		}
		s.instances[in.GID] = in
		ans.SuccessInstance++
		ans.Success = append(ans.Success, orderJSON{OrderUID: order})
	}
	return ans, nil
}

// Wire shapes of the instance list, in the document's key order.
type instanceJSON struct {
	CustomPorts []any             `json:"custom_ports"`
	AppMetadata map[string]string `json:"app_metadata"`
	GID         string            `json:"gid"`
	Name        string            `json:"name"`
	Image       instanceImageJSON `json:"image"`
	Size        sizeJSON          `json:"size"`
	IP          string            `json:"ip"`
	PayMethod   string            `json:"pay_method"`
	Status      string            `json:"status"`
	CreateAt    string            `json:"create_at"`
	ExpireAt    string            `json:"expire_at"`
	Username    string            `json:"username"`
	Port        int               `json:"port"`
	RoomName    string            `json:"room_name"`
	Password    string            `json:"password"`
	OrderUID    string            `json:"order_uid"`
}

type instanceImageJSON struct {
	ImageID     string `json:"image_id"`
	Name        string `json:"name"`
	Scene       string `json:"scene"`
	OS          string `json:"os"`
	Description string `json:"description"`
}

type sizeJSON struct {
	GPUType  string `json:"gpu_type"`
	Scene    string `json:"scene"`
	DiskFree string `json:"disk_free"`
	GPURAM   int    `json:"gpu_ram"`
	GPUModel string `json:"gpu_model"`
	Memory   int    `json:"memory"`
	CPU      int    `json:"cpu"`
	GPU      string `json:"gpu"`
}

func (s *Server) instanceList(fields, time.Time) (any, *apiError) {
	items := []instanceJSON{}
	for _, in := range s.sortedInstances() {
		p := in.product
		meta := map[string]string{}
		if in.AppType != "" {
			meta["app_type"] = in.AppType
		}
		expire := ""
		if !in.ExpireAt.IsZero() {
			expire = in.ExpireAt.In(cst).Format(time.RFC3339)
		}
		items = append(items, instanceJSON{
			CustomPorts: []any{},
			AppMetadata: meta,
			GID:         in.GID,
			Name:        in.Name,
			Image:       instanceImageJSON{ImageID: in.ImageID, Name: in.ImageName, Scene: "Gpu", OS: "linux", Description: in.imageDesc},
			Size: sizeJSON{GPUType: p.GPUType, Scene: "Gpu", DiskFree: strconv.Itoa(p.DiskOne + p.DiskDataOne + in.extra),
				GPURAM: p.GPURAM, GPUModel: in.Name, Memory: p.Memory, CPU: p.CPU, GPU: strconv.Itoa(in.GPUCount)},
			IP:        in.IP,
			PayMethod: in.PayMethod,
			Status:    in.Status,
			CreateAt:  in.CreatedAt.In(cst).Format(time.RFC3339),
			ExpireAt:  expire,
			Username:  in.Username,
			Port:      in.Port,
			RoomName:  in.RoomName,
			Password:  in.Password,
			OrderUID:  in.OrderUID,
		})
	}
	return map[string]any{"items": items, "total": strconv.Itoa(len(items))}, nil
}

func (s *Server) stop(f fields, now time.Time) (any, *apiError) {
	gids, err := f.gids()
	if err != nil {
		return nil, err
	}
	cardless, err := f.boolean("card_less")
	if err != nil {
		return nil, err
	}
	return s.each(gids, func(in *instance, b *batch) {
		switch in.Status {
		case StatusRunning, StatusCreating, StatusStarting:
		default:
			b.fail(in.GID, "instance %s is %s; only a Running instance (or one still Creating or Starting) can be stopped", in.GID, in.Status)
			return
		}
		in.StopMode = StopNormal
		if cardless {
			in.StopMode = StopCardless
		}
		s.walk(in, now, StatusStopping, StatusStopped)
		b.Success = append(b.Success, in.GID)
	}), nil
}

func (s *Server) startNormal(f fields, now time.Time) (any, *apiError) {
	return s.start(f, now, StopNormal)
}

func (s *Server) startCardless(f fields, now time.Time) (any, *apiError) {
	return s.start(f, now, StopCardless)
}

func (s *Server) start(f fields, now time.Time, mode string) (any, *apiError) {
	gids, err := f.gids()
	if err != nil {
		return nil, err
	}
	return s.each(gids, func(in *instance, b *batch) {
		switch {
		case in.Status != StatusStopped:
			b.fail(in.GID, "instance %s is %s; only a Stopped instance can be started", in.GID, in.Status)
		case in.StopMode != mode && mode == StopNormal:
			b.fail(in.GID, "instance %s was stopped card-less; start it with /gpu/instances/cardless/start", in.GID)
		case in.StopMode != mode:
			b.fail(in.GID, "instance %s was not stopped card-less; start it with /gpu/instances/start", in.GID)
		default:
			in.StopMode = ""
			s.walk(in, now, StatusStarting, StatusRunning)
			b.Success = append(b.Success, in.GID)
		}
	}), nil
}

func (s *Server) restart(f fields, now time.Time) (any, *apiError) {
	gids, err := f.gids()
	if err != nil {
		return nil, err
	}
	return s.each(gids, func(in *instance, b *batch) {
		if in.Status != StatusRunning {
			b.fail(in.GID, "instance %s is %s; only a Running instance can be restarted", in.GID, in.Status)
			return
		}
		s.walk(in, now, StatusRestarting, StatusRunning)
		b.Success = append(b.Success, in.GID)
	}), nil
}

func (s *Server) snapshot(f fields, now time.Time) (any, *apiError) {
	gid, err := f.str("gid")
	if err != nil {
		return nil, err
	}
	if strings.Contains(gid, ",") {
		return nil, badRequest("gid must be a single instance id")
	}
	name, err := f.str("name")
	if err != nil {
		return nil, err
	}
	refuse := func(format string, args ...any) (any, *apiError) {
		return map[string]any{"success": false, "message": fmt.Sprintf(format, args...)}, nil
	}
	in, ok := s.instances[gid]
	if !ok {
		return refuse("instance %s not found", gid)
	}
	if in.Status != StatusRunning && in.Status != StatusStopped {
		return refuse("instance %s is %s; save an image of a Running or Stopped instance", gid, in.Status)
	}
	s.seq++
	s.own = append(s.own, &ownImage{
		imageJSON: imageJSON{Name: name, ImageID: uuidOf(fmt.Sprintf("own/%d/%s", s.seq, gid)), Scene: "Gpu", OS: "linux",
			Description: "创建时间: " + now.In(cst).Format("2006-01-02 15:04:05"), RoomName: in.RoomName},
		source:  gid,
		readyAt: now.Add(s.StepDelay()),
	})
	return map[string]any{"success": true}, nil
}

func (s *Server) rebuild(f fields, now time.Time) (any, *apiError) {
	gids, err := f.gids()
	if err != nil {
		return nil, err
	}
	imageID, err := f.str("image_id")
	if err != nil {
		return nil, err
	}
	return s.each(gids, func(in *instance, b *batch) {
		if in.Status != StatusRunning && in.Status != StatusStopped {
			b.fail(in.GID, "instance %s is %s; rebuild a Running or Stopped instance", in.GID, in.Status)
			return
		}
		img, ok := s.findImage(in.RoomName, imageID, now)
		if !ok {
			b.fail(in.GID, "image %s not found in room %s", imageID, in.RoomName)
			return
		}
		if _, err := in.machine.RotateHostKey(); err != nil {
			b.fail(in.GID, "instance %s: rebuild failed: %v", in.GID, err)
			return
		}
		in.ImageID, in.ImageName, in.imageDesc, in.AppType = img.ImageID, img.Name, img.Description, ""
		b.Success = append(b.Success, in.GID)
	}), nil
}

func (s *Server) destroy(f fields, now time.Time) (any, *apiError) {
	gids, err := f.gids()
	if err != nil {
		return nil, err
	}
	return s.each(gids, func(in *instance, b *batch) {
		switch {
		case in.PayMethod != PayHour:
			b.fail(in.GID, "instance %s is billed by %s; only hourly-billed instances can be destroyed", in.GID, in.PayMethod)
		case in.Status != StatusStopped:
			b.fail(in.GID, "instance %s is %s; stop it before destroying it", in.GID, in.Status)
		default:
			in.product.GPURemain += in.GPUCount
			s.remove(in, now, StatusDestroying)
			b.Success = append(b.Success, in.GID)
		}
	}), nil
}

func (s *Server) lengthen(f fields, now time.Time) (any, *apiError) {
	gids, err := f.gids()
	if err != nil {
		return nil, err
	}
	unit, _, err := f.int("pay_unit", true)
	if err != nil {
		return nil, err
	}
	if unit != 1 && unit != 2 {
		return nil, badRequest("pay_unit must be 1 (day) or 2 (month)")
	}
	to, _ := payMethodOf(unit)
	return s.each(gids, func(in *instance, b *batch) {
		switch {
		case in.Status == StatusDestroying:
			b.fail(in.GID, "instance %s is being destroyed", in.GID)
		case in.PayMethod == PayMonth, in.PayMethod == to:
			b.fail(in.GID, "instance %s is billed by %s and cannot be converted to %s", in.GID, in.PayMethod, to)
		default:
			in.PayMethod = to
			if to == PayDay {
				in.ExpireAt = now.AddDate(0, 0, 1)
			} else {
				in.ExpireAt = now.AddDate(0, 1, 0)
			}
			b.Success = append(b.Success, in.GID)
		}
	}), nil
}

func (s *Server) renew(f fields, _ time.Time) (any, *apiError) {
	gids, err := f.gids()
	if err != nil {
		return nil, err
	}
	n, _, err := f.int("pay_period", true)
	if err != nil {
		return nil, err
	}
	return s.each(gids, func(in *instance, b *batch) {
		switch {
		case in.Status == StatusDestroying:
			b.fail(in.GID, "instance %s is being destroyed", in.GID)
		case in.PayMethod == PayDay && (n == 1 || n == 3 || n == 7):
			in.ExpireAt = in.ExpireAt.AddDate(0, 0, n)
			b.Success = append(b.Success, in.GID)
		case in.PayMethod == PayMonth && (n == 1 || n == 3 || n == 12):
			in.ExpireAt = in.ExpireAt.AddDate(0, n, 0)
			b.Success = append(b.Success, in.GID)
		case in.PayMethod == PayDay:
			b.fail(in.GID, "pay_period %d is not allowed for daily billing: use 1, 3 or 7", n)
		case in.PayMethod == PayMonth:
			b.fail(in.GID, "pay_period %d is not allowed for monthly billing: use 1, 3 or 12", n)
		default:
			b.fail(in.GID, "instance %s is billed by the hour and cannot be renewed", in.GID)
		}
	}), nil
}
