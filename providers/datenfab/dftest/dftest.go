// Package dftest is an in-process emulator of Datenfab's (NeoLink.AI MatrixDC) compute API,
// like net/http/httptest: tests and gpu-mcp's --demo mode point the datenfab adapter at it.
//
// It is stateful and answers in the document's exact payload shapes (vendor-api.md section 3,
// seed 001), quirks included: actions answer the JSON string "ok", numbers such as skusID and
// sellingType are strings, the create answer has no servers or Pods and shows the data volume
// with Size 0, the list is {"hasNextPage","nodes","totalCount"}.
//
// Guesses where the documents are silent (each could differ on the real service):
//   - Errors are {"message": "..."} with 401 (missing or wrong Authorization or namespace
//     header), 404 (unknown cluster, region or instance), 409 (wrong state) and 400 (invalid
//     body, sold out: "insufficient GPU resources ...").
//   - The Authorization header must be exactly "bearer <token>", lowercase as documented.
//   - Status strings beyond the documented Creating and Running follow the UI's names:
//     Starting, ShuttingDown, Shutdown, Deleting. power_on also answers "ok".
//   - CostTime must match the CostType's unit ("3D" daily, "2W" weekly, "1M" monthly; "" for
//     pay-as-you-go), and GPUSKUID must be a row whose sellingType equals CostType.
//   - A snapshot saved with needSnapshot is <harborAddr>/<namespace>/<imageName>:<tag>.
//   - The unit-price annotation is the SKU's price in CNY (the seed's "250" is not).
//   - remainGPUCount drops on create and comes back when the instance is deleted.
//   - power_off is accepted while an instance is Creating or Starting as well as Running (it
//     scales the pending container to zero), so that an instance that never comes up can be
//     powered off and then deleted; delete needs Shutdown or Failed. "Failed" is the failure
//     status emu.LaunchFails leads to; the documents name none.
//
// Every instance has a real machine (providers/machinetest) on 127.0.0.1, bound at create:
// servers.SSH.sshAddr reads "ssh -p<port> root@127.0.0.1", and the machine serves SSH (root,
// servers.SSH.sshPassword, a host key of its own, /bin/sh in a sandbox, sftp, an nvidia-smi
// that reports the SKU's GPUs) exactly while the instance is Running. A power-off halts it
// (its processes die, its disk stays); a delete deletes it. Jupyter and TensorBoard URLs stay fake.
package dftest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/emu"
)

// StatusFailed is the failure status the emulator uses (a guess: none is documented).
const StatusFailed = "Failed"

// Fixed demo credentials: give them to the adapter's Config (Token, Namespace).
const (
	DemoToken     = "dfdemo-3650d-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	DemoNamespace = "demo-user-1024"
)

// APIPrefix is the vendor's path prefix, included in URL().
const APIPrefix = "/mdc/api/v1"

// DefaultAnnotationPrefix is the annotation key domain of the seed document.
const DefaultAnnotationPrefix = "demo.cdc.datenfab.com/"

// Options configures a Server.
type Options struct {
	// StepDelay is how long each transitional status (Creating, Starting, ShuttingDown,
	// Deleting) lasts. 0: the next read already shows the final status.
	StepDelay time.Duration
	// Token and Namespace are the accepted credentials; empty means DemoToken, DemoNamespace.
	Token, Namespace string
	// AnnotationPrefix is the instance annotation key domain; empty means DefaultAnnotationPrefix.
	AnnotationPrefix string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Wrap, when set, serves the API through it (tests).
	Wrap func(http.Handler) http.Handler
}

// Cost is an instance's cost object.
type Cost struct {
	CostType, CostTime, DiscountID, GPUSKUID, DiskSKUID, CouponID string
}

// InstanceState is a copy of an emulated instance, for tests.
type InstanceState struct {
	Name, UID, DisplayName, Cluster, Image string
	Status                                 string // the raw status the API reports
	Cost                                   Cost
	GPUs                                   int
	DataDiskGB                             int
	CreatedAt                              time.Time
	SavedImages                            []string // references saved by power_off with needSnapshot
}

// Server is the emulator. The embedded skeleton's lock guards the fields below.
type Server struct {
	*emu.Server
	opts Options
	cst  *time.Location

	regions   []regionJSON
	skus      []*sku
	instances map[string]*instance
	order     []string // instance names in creation order
	saved     []string
}

type instance struct {
	name, uid, displayName, cluster, image string
	status                                 string
	steps                                  emu.Steps[string]
	sku                                    *sku
	cost                                   Cost
	dataSize                               int
	created, updated                       time.Time
	orderID, pvc, podSuffix, podIP         string
	sshHost                                string
	sshPort                                int
	sshPassword, jupyterToken              string
	saved                                  []string
}

// Emulate starts an emulator for the vendor list (providers.Vendor); the variables are the
// adapter's, without their prefix.
func Emulate(o emulated.Options) (emulated.Server, map[string]string) {
	s := NewServer(Options{StepDelay: o.StepDelay, Now: o.Now, Wrap: o.Wrap})
	return s, map[string]string{"TOKEN": s.Credential(), "NAMESPACE": s.Namespace(), "BASE_URL": s.URL()}
}

// Endpoints are the emulated requests that tests aim faults at: a ListOffers asks the SKUs of
// both regions at once; the create buys.
var Endpoints = emulated.Endpoints{Offers: "/skus/computings", OfferReads: 2, Buy: emulated.Faults{Method: http.MethodPost, Path: "/instances"}}

// NewServer starts an emulator on a loopback port.
func NewServer(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DemoToken
	}
	if opts.Namespace == "" {
		opts.Namespace = DemoNamespace
	}
	if opts.AnnotationPrefix == "" {
		opts.AnnotationPrefix = DefaultAnnotationPrefix
	}
	s := &Server{
		opts: opts, cst: time.FixedZone("CST", 8*3600),
		regions: defaultRegions(), skus: defaultSKUs(), instances: map[string]*instance{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+APIPrefix+"/regions", s.listRegions)
	mux.HandleFunc("GET "+APIPrefix+"/skus/computings", s.listSKUs)
	mux.HandleFunc("POST "+APIPrefix+"/clusters/{cluster}/instances", s.create)
	mux.HandleFunc("GET "+APIPrefix+"/clusters/{cluster}/instances", s.list)
	mux.HandleFunc("DELETE "+APIPrefix+"/clusters/{cluster}/instances", s.delete)
	mux.HandleFunc("GET "+APIPrefix+"/clusters/{cluster}/instances/{name}", s.detail)
	mux.HandleFunc("POST "+APIPrefix+"/clusters/{cluster}/instances/{name}/power_off", s.powerOff)
	mux.HandleFunc("POST "+APIPrefix+"/clusters/{cluster}/instances/{name}/power_on", s.powerOn)
	s.Server = emu.New(emu.Options{Vendor: "datenfab", Credential: opts.Token, Prefix: APIPrefix, StepDelay: opts.StepDelay, Now: opts.Now,
		Settle: s.settle, IsChange: func(r *http.Request) bool { return r.Method != http.MethodGet }, Wrap: opts.Wrap}, s.authorized(mux))
	return s
}

// sshReady tells whether in is Running now. It looks at due transitions without applying
// them, so it never removes an instance.
func (s *Server) sshReady(in *instance) bool {
	status, ok := in.steps.At(s.Now(), in.status)
	return ok && status == "Running"
}

// Namespace is the accepted namespace (user id).
func (s *Server) Namespace() string { return s.opts.Namespace }

// Instance returns a copy of the instance called name, after pending transitions.
func (s *Server) Instance(name string) (InstanceState, bool) {
	s.Lock()
	defer s.Unlock()
	s.settle(s.Now())
	in, ok := s.instances[name]
	if !ok {
		return InstanceState{}, false
	}
	return InstanceState{
		Name: in.name, UID: in.uid, DisplayName: in.displayName, Cluster: in.cluster, Image: in.image,
		Status: in.status, Cost: in.cost, GPUs: in.sku.GPUCounts, DataDiskGB: in.dataSize, CreatedAt: in.created,
		SavedImages: append([]string(nil), in.saved...),
	}, true
}

// SavedImages lists every image reference saved with needSnapshot, also of deleted instances.
func (s *Server) SavedImages() []string {
	s.Lock()
	defer s.Unlock()
	return append([]string(nil), s.saved...)
}

// RemainGPUs is the remainGPUCount of SKU skusID, after pending transitions.
func (s *Server) RemainGPUs(skusID string) (int, bool) {
	s.Lock()
	defer s.Unlock()
	s.settle(s.Now())
	for _, k := range s.skus {
		if k.SKUsID == skusID {
			return k.RemainGPUCount, true
		}
	}
	return 0, false
}

// SetStatus forces an instance's raw status (e.g. "Failed"), cancelling pending transitions.
func (s *Server) SetStatus(name, status string) bool {
	s.Lock()
	defer s.Unlock()
	s.settle(s.Now())
	in, ok := s.instances[name]
	if ok {
		in.status = status
		in.steps.Clear()
	}
	return ok
}

// authorized checks both auth headers before the route runs; the skeleton holds the lock.
func (s *Server) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer "+s.Credential() {
			writeError(w, http.StatusUnauthorized, "unauthorized: missing or invalid token")
			return
		}
		if r.Header.Get("namespace") != s.opts.Namespace {
			writeError(w, http.StatusUnauthorized, "unauthorized: missing or invalid namespace")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// settle applies every transition whose time has come. Called with the lock held.
func (s *Server) settle(now time.Time) {
	for _, name := range append([]string(nil), s.order...) {
		if in := s.instances[name]; in.steps.Advance(now, &in.status) {
			s.remove(in)
		}
	}
}

func (s *Server) remove(in *instance) {
	in.sku.RemainGPUCount += in.sku.GPUCounts
	delete(s.instances, in.name)
	s.Forget(in.name)
	for i, n := range s.order {
		if n == in.name {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

// transition sets a transitional status now and queues the ones to follow, StepDelay apart.
func (s *Server) transition(in *instance, now string, then ...string) {
	in.steps.Walk(&in.status, s.Now(), s.StepDelay(), now, then...)
}

func (s *Server) regionOfCluster(cluster string) (regionJSON, bool) {
	for _, r := range s.regions {
		if r.ClusterName == cluster {
			return r, true
		}
	}
	return regionJSON{}, false
}

func (s *Server) listRegions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.regions)
}

func (s *Server) listSKUs(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("region_id")
	if id == "" {
		writeError(w, http.StatusBadRequest, "region_id is required")
		return
	}
	known := false
	for _, rg := range s.regions {
		known = known || rg.ID == id
	}
	if !known {
		writeError(w, http.StatusNotFound, fmt.Sprintf("region %q not found", id))
		return
	}
	out := []skuJSON{}
	for _, k := range s.skus {
		if k.RegionID == id {
			out = append(out, k.skuJSON)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// cluster resolves the {cluster} path value, answering 404 when unknown.
func (s *Server) cluster(w http.ResponseWriter, r *http.Request) (regionJSON, bool) {
	c := r.PathValue("cluster")
	rg, ok := s.regionOfCluster(c)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("cluster %q not found", c))
	}
	return rg, ok
}

// lookup resolves an instance of the cluster, answering 404 when unknown.
func (s *Server) lookup(w http.ResponseWriter, cluster, name string) (*instance, bool) {
	in, ok := s.instances[name]
	if !ok || in.cluster != cluster {
		writeError(w, http.StatusNotFound, fmt.Sprintf("instance %q not found", name))
		return nil, false
	}
	return in, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	rg, ok := s.cluster(w, r)
	if !ok {
		return
	}
	nodes := []instanceJSON{}
	for _, n := range s.order {
		if in := s.instances[n]; in.cluster == rg.ClusterName {
			nodes = append(nodes, s.render(in, viewList))
		}
	}
	writeJSON(w, http.StatusOK, listJSON{HasNextPage: false, Nodes: nodes, TotalCount: len(nodes)})
}

func (s *Server) detail(w http.ResponseWriter, r *http.Request) {
	rg, ok := s.cluster(w, r)
	if !ok {
		return
	}
	if in, ok := s.lookup(w, rg.ClusterName, r.PathValue("name")); ok {
		writeJSON(w, http.StatusOK, s.render(in, viewDetail))
	}
}

// createRequest is the create body with the types the document gives: every Cost field is a
// string, VolumeMount an array, Size an integer. Anything else fails to decode: 400.
type createRequest struct {
	Cost *struct {
		CostType  string `json:"CostType"`
		CouponID  string `json:"CouponID"`
		DiskSKUID string `json:"DiskSKUID"`
		GPUSKUID  string `json:"GPUSKUID"`
		CostTime  string `json:"CostTime"`
	} `json:"Cost"`
	VolumeMount []struct {
		PathInContainer string `json:"PathInContainer"`
		Size            *int   `json:"Size"`
		Type            string `json:"Type"`
	} `json:"VolumeMount"`
	Namespace   string `json:"namespace"`
	DisplayName string `json:"displayName"`
	Image       string `json:"image"`
	Region      string `json:"Region"`
}

var costTimeUnit = map[string]string{"2": "M", "3": "W", "4": "D"}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	rg, ok := s.cluster(w, r)
	if !ok {
		return
	}
	var req createRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	bad := func(format string, args ...any) { writeError(w, http.StatusBadRequest, fmt.Sprintf(format, args...)) }
	switch {
	case req.Cost == nil:
		bad("Cost is required")
		return
	case req.Cost.CostType != "1" && costTimeUnit[req.Cost.CostType] == "":
		bad("Cost.CostType must be 1, 2, 3 or 4, got %q", req.Cost.CostType)
		return
	case req.Cost.DiskSKUID != "1":
		bad("Cost.DiskSKUID must be \"1\", got %q", req.Cost.DiskSKUID)
		return
	case req.VolumeMount == nil:
		bad("VolumeMount is required")
		return
	case req.Namespace == "":
		bad("namespace is required")
		return
	case req.Namespace != s.opts.Namespace:
		writeError(w, http.StatusForbidden, "namespace in the body does not match the namespace header")
		return
	case strings.TrimSpace(req.DisplayName) == "":
		bad("displayName is required")
		return
	case strings.TrimSpace(req.Image) == "" || strings.ContainsAny(req.Image, " \t\r\n"):
		bad("image must be a full image reference")
		return
	case req.Region != "" && req.Region != rg.Region:
		bad("Region %q is not the region of cluster %s", req.Region, rg.ClusterName)
		return
	}
	var k *sku
	for _, c := range s.skus {
		if c.SKUsID == req.Cost.GPUSKUID && c.ClusterName == rg.ClusterName {
			k = c
		}
	}
	if k == nil {
		bad("Cost.GPUSKUID %q is not a GPU SKU of cluster %s", req.Cost.GPUSKUID, rg.ClusterName)
		return
	}
	if k.SellingType != req.Cost.CostType {
		bad("Cost.CostType %s does not match the selling type %s of GPU SKU %s", req.Cost.CostType, k.SellingType, k.SKUsID)
		return
	}
	ct := req.Cost.CostTime
	if req.Cost.CostType == "1" && ct != "" {
		bad("Cost.CostTime must be empty for pay-as-you-go, got %q", ct)
		return
	}
	if unit := costTimeUnit[req.Cost.CostType]; unit != "" && !validCostTime(ct, unit) {
		bad("Cost.CostTime must be <n>%s for CostType %s, got %q", unit, req.Cost.CostType, ct)
		return
	}
	size := 50
	for _, v := range req.VolumeMount {
		if v.Type != "" && v.Type != "shared-filesystem" {
			bad("VolumeMount.Type must be shared-filesystem, got %q", v.Type)
			return
		}
		if v.PathInContainer != "" && !strings.HasPrefix(v.PathInContainer, "/") {
			bad("VolumeMount.PathInContainer must be an absolute path")
			return
		}
		if v.Size != nil {
			if *v.Size < 0 {
				bad("VolumeMount.Size must not be negative")
				return
			}
			size = *v.Size
		}
	}
	outcome := s.Outcome(rg.ClusterName + "/" + k.SKUsID + "/" + k.SellingType)
	if outcome == emu.LaunchSoldOut {
		bad("insufficient GPU resources: GPU SKU %s is sold out", k.SKUsID)
		return
	}
	if k.RemainGPUCount < k.GPUCounts {
		bad("insufficient GPU resources: GPU SKU %s has %d GPUs left, %d needed", k.SKUsID, k.RemainGPUCount, k.GPUCounts)
		return
	}
	now := s.Now()
	in := &instance{
		name: "instance-" + randomHex(4), uid: uuid(), displayName: req.DisplayName, cluster: rg.ClusterName, image: req.Image,
		sku: k, dataSize: size, created: now, orderID: uuid(),
		cost:         Cost{CostType: req.Cost.CostType, CostTime: ct, GPUSKUID: k.SKUsID, DiskSKUID: "1", CouponID: req.Cost.CouponID},
		pvc:          "volume-" + randomHex(4),
		podSuffix:    randomHex(3)[:5],
		podIP:        fmt.Sprintf("172.31.213.%d", 10+randomInt(240)),
		sshPassword:  randomHex(6),
		jupyterToken: randomHex(16),
	}
	model := k.Name
	if model == "" {
		model = k.GPUProduct
	}
	ep, err := s.Listen(in.name, emu.Machine{User: "root", Password: in.sshPassword, GPUModel: model, GPUCount: k.GPUCounts, GPUMemoryMiB: k.GPUMemory * 1024},
		func() bool { return s.sshReady(in) })
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot allocate an SSH port: "+err.Error())
		return
	}
	in.sshHost, in.sshPort = ep.Host(), ep.Port()
	k.RemainGPUCount -= k.GPUCounts
	s.instances[in.name] = in
	s.order = append(s.order, in.name)
	switch outcome {
	case emu.LaunchNeverRuns:
		s.transition(in, "Creating")
	case emu.LaunchFails:
		s.transition(in, "Creating", StatusFailed)
	default:
		s.transition(in, "Creating", "Running")
	}
	writeJSON(w, http.StatusOK, s.render(in, viewCreate))
}

func validCostTime(ct, unit string) bool {
	n, ok := strings.CutSuffix(ct, unit)
	if !ok || n == "" || n[0] == '0' {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// powerOffRequest follows the document's example types: a number and a bool.
type powerOffRequest struct {
	GracePeriodSeconds *int   `json:"gracePeriodSeconds"`
	NeedSnapshot       *bool  `json:"needSnapshot"`
	ImageName          string `json:"imageName"`
	Tag                string `json:"tag"`
}

func (s *Server) powerOff(w http.ResponseWriter, r *http.Request) {
	rg, ok := s.cluster(w, r)
	if !ok {
		return
	}
	in, ok := s.lookup(w, rg.ClusterName, r.PathValue("name"))
	if !ok {
		return
	}
	var req powerOffRequest
	if body, _ := io.ReadAll(r.Body); len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error())
			return
		}
	}
	if req.GracePeriodSeconds != nil && *req.GracePeriodSeconds < 0 {
		writeError(w, http.StatusBadRequest, "gracePeriodSeconds must not be negative")
		return
	}
	if in.status != "Running" && in.status != "Starting" && in.status != "Creating" {
		writeError(w, http.StatusConflict, fmt.Sprintf("instance %s is %s: only a running (or still creating or starting) instance can be powered off", in.name, in.status))
		return
	}
	if req.NeedSnapshot != nil && *req.NeedSnapshot {
		if !validImageName(req.ImageName) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("imageName %q is not a valid image name", req.ImageName))
			return
		}
		tag := req.Tag
		if tag == "" {
			tag = "latest"
		}
		ref := rg.HarborAddr + "/" + s.opts.Namespace + "/" + req.ImageName + ":" + tag
		in.saved = append(in.saved, ref)
		s.saved = append(s.saved, ref)
	}
	in.updated = s.Now()
	s.transition(in, "ShuttingDown", "Shutdown")
	writeJSON(w, http.StatusOK, "ok")
}

func validImageName(n string) bool {
	if n == "" || len(n) > 128 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Server) powerOn(w http.ResponseWriter, r *http.Request) {
	rg, ok := s.cluster(w, r)
	if !ok {
		return
	}
	in, ok := s.lookup(w, rg.ClusterName, r.PathValue("name"))
	if !ok {
		return
	}
	if in.status != "Shutdown" {
		writeError(w, http.StatusConflict, fmt.Sprintf("instance %s is %s: only a shut-down instance can be powered on", in.name, in.status))
		return
	}
	in.updated = s.Now()
	s.transition(in, "Starting", "Running")
	writeJSON(w, http.StatusOK, "ok")
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	rg, ok := s.cluster(w, r)
	if !ok {
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		writeError(w, http.StatusBadRequest, "query parameter name is required")
		return
	}
	in, ok := s.lookup(w, rg.ClusterName, name)
	if !ok {
		return
	}
	if in.status != "Shutdown" && in.status != "Failed" {
		writeError(w, http.StatusConflict, fmt.Sprintf("instance %s is %s: power it off before deleting", in.name, in.status))
		return
	}
	in.updated = s.Now()
	s.transition(in, "Deleting")
	in.steps.ThenGone(s.Now(), s.StepDelay())
	writeJSON(w, http.StatusOK, "ok")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomInt(n int) int {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return (int(b[0])<<8 | int(b[1])) % n
}
