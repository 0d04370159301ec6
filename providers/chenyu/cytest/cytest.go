// Package cytest is an emulator of Chenyu's open API v2 (vendor-api.md section 4), for tests
// and for gpu-mcp --demo, in the manner of net/http/httptest.
//
// It is stateful and answers in the documents' shapes: every answer is the {code,msg,data}
// envelope (action answers have no data), refusals are HTTP 200 with a non-zero code and a
// Chinese + English msg, a missing or wrong key is HTTP 401 with code 2. Instances move
// through Chenyu's integer states lazily, on each request, StepDelay apart:
//
//	create_by_image / create_by_pod  1 -> 2
//	shutdown                         2 -> 21 -> 22
//	startup                          22 (or 23) -> 24 -> 2
//	restart                          2 -> 27 -> 2
//	save_image (running only)        save_image_status 1 -> 2 (a private image appears at
//	                                 once, "uploading"), then the instance shuts down 21 -> 22
//	shutdown_timer (running only)    at the set Unix time: 21 -> 22
//	destroy                          removed; refused while shutting down (21) or restarting
//	                                 (27) or saving an image, accepted while creating (1) or
//	                                 starting (24), which aborts the boot (a guess: Chenyu
//	                                 documents no rule), so that a stuck instance can go
//
// Launch outcomes (SetLaunchOutcome): emu.LaunchNeverRuns leaves an instance at 1 forever,
// emu.LaunchFails takes it 1 -> 23 (abnormally stopped), emu.LaunchSoldOut refuses the create with
// "GPU资源不足". A stuck instance cannot be shut down (shutdown needs 2, as documented) but can
// be destroyed.
//
// Every instance has a real machine (providers/machinetest) on 127.0.0.1, bound at create:
// server_map's ssh_info gives host "127.0.0.1" and its port, and the machine serves SSH (user
// root, the instance's password, a host key of its own, /bin/sh in a sandbox, sftp, an
// nvidia-smi that reports the instance's GPUs) exactly while the instance is running (2). A
// shutdown, a restart or the shutdown timer halts it (its processes die, its disk stays); a
// startup on other GPUs changes what nvidia-smi reports; a destroy deletes it. Web URLs are fake
// (*.chenyu.demo.invalid); nothing here reaches the network beyond loopback.
package cytest

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/emu"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

// DemoAPIKey is the only key the emulator accepts ("Authorization: Bearer <DemoAPIKey>").
const DemoAPIKey = "cy_demo_4f1c2b7e9a0d43c8b6e5a1f2d3c4b5a6"

// PathPrefix is the vendor's path prefix; URL() includes it.
const PathPrefix = "/api/open/v2"

// sshUser is the login ssh_info names.
const sshUser = "root"

// SampleInstanceUUID is the running instance the emulator starts with, modelled on the
// instance-list example of the seed document.
const SampleInstanceUUID = "inst_12345678-1234-1234-1234-123456789012"

// Options configures a Server.
type Options struct {
	// StepDelay is how long each transitional state lasts before the next one; 0 means that
	// the next request already sees the final state.
	StepDelay time.Duration
	// RateLimitEvery, when n > 0, answers every nth request with HTTP 429, "Retry-After: 2"
	// and {"code":429,...}.
	RateLimitEvery int
	// Now is the emulator's clock (nil: time.Now); tests use it to reach a scheduled stop.
	Now func() time.Time
	// MaxPageSize caps page_size, as the real API may (0: 100). A small cap makes clients page.
	MaxPageSize int
	// ExtraGPUModels adds this many made-up GPU models after the catalog's, for tests and
	// benchmarks of long lists.
	ExtraGPUModels int
	// Wrap, when set, serves the API through it (tests).
	Wrap func(http.Handler) http.Handler
}

func (s *Server) maxPageSize() int {
	if s.opts.MaxPageSize > 0 {
		return s.opts.MaxPageSize
	}
	return 100
}

// InstanceState is a copy of one emulated instance.
type InstanceState struct {
	UUID            string
	Status          int
	Title           string
	SaveImageStatus int // 0 never saved, 1 uploading, 2 saved, 3 failed
	ShutdownEnabled bool
	ShutdownTime    int64 // Unix seconds
	GPUUUID         string
	GPUNums         int
	ImageUUID       string // image or pod the instance was created from
	PodTag          string
	CreateTime      int64
	StartTime       int64
}

// PrivateImage is a copy of one saved image.
type PrivateImage struct {
	UUID            string
	Title           string
	Remark          string
	SizeGB          float64
	FromInstance    string
	SaveImageStatus int // 1 uploading, 2 saved, 3 failed
	CreateTime      int64
}

// Server is a running emulator. The embedded skeleton's lock guards the fields below.
type Server struct {
	*emu.Server
	opts Options

	count     int
	seq       int
	instances map[string]*instance
	order     []string // instance uuids in creation order
	private   []*privateImage
	gpus      []gpu
	pods      []pod
	market    []marketImage
	balance   float64
	card      float64
}

// Emulate starts an emulator for the vendor list (providers.Vendor); the variables are the
// adapter's, without their prefix.
func Emulate(o emulated.Options) (emulated.Server, map[string]string) {
	s := NewServer(Options{StepDelay: o.StepDelay, Now: o.Now, Wrap: o.Wrap})
	return s, map[string]string{"API_KEY": s.Credential(), "BASE_URL": s.URL()}
}

// Endpoints are the emulated requests that tests aim faults at: the GPU list and a create.
var Endpoints = emulated.Endpoints{Offers: "/gpu/list", OfferReads: 1, Buy: emulated.Faults{Method: http.MethodPost, Path: "/instance/create_by_image"}}

// NewServer starts an emulator on loopback.
func NewServer(opts Options) *Server {
	s := &Server{opts: opts, instances: map[string]*instance{}, balance: 1288.50, card: 200}
	s.gpus, s.pods, s.market = catalog()
	s.gpus = append(s.gpus, extraGPUs(opts.ExtraGPUModels)...)
	s.Server = emu.New(emu.Options{Vendor: "chenyu", Credential: DemoAPIKey, Prefix: PathPrefix, StepDelay: opts.StepDelay, Now: opts.Now,
		Settle: s.settle, IsChange: func(r *http.Request) bool { return r.Method == http.MethodPost }, Wrap: opts.Wrap}, http.HandlerFunc(s.serve))
	s.Lock()
	defer s.Unlock()
	s.seedSample()
	return s
}

// sshReady applies in's due transitions and tells whether it is running. Transitions never
// remove a Chenyu instance, so no endpoint is closed here.
func (s *Server) sshReady(in *instance) bool {
	s.advanceOne(in, s.Now())
	return in.status == statusRunning
}

// listen starts the machine of a new instance.
func (s *Server) listen(in *instance) error {
	m, err := s.Listen(in.uuid, emu.Machine{User: sshUser, Password: in.password, GPUModel: in.gpuName, GPUCount: in.gpuNums},
		func() bool { return s.sshReady(in) })
	if err != nil {
		return err
	}
	in.machine, in.host, in.port = m, m.Host(), m.Port()
	return nil
}

// Instance returns a copy of the instance with this uuid, after applying the transitions due.
func (s *Server) Instance(uuid string) (InstanceState, bool) {
	s.Lock()
	defer s.Unlock()
	s.settle(s.Now())
	in, ok := s.instances[uuid]
	if !ok {
		return InstanceState{}, false
	}
	return in.state(), true
}

// InstanceIDs lists the instances' uuids in creation order.
func (s *Server) InstanceIDs() []string {
	s.Lock()
	defer s.Unlock()
	s.settle(s.Now())
	return append([]string(nil), s.order...)
}

// PrivateImages returns copies of the saved images, oldest first.
func (s *Server) PrivateImages() []PrivateImage {
	s.Lock()
	defer s.Unlock()
	s.settle(s.Now())
	out := make([]PrivateImage, len(s.private))
	for i, p := range s.private {
		out[i] = PrivateImage{UUID: p.uuid, Title: p.title, Remark: p.remark, SizeGB: p.sizeGB,
			FromInstance: p.instance, SaveImageStatus: p.status, CreateTime: p.created}
	}
	return out
}

// SetInstanceStatus forces an instance's raw status (e.g. 23, or a code Chenyu has not
// documented) and cancels its pending transitions, so that tests can reach any state.
func (s *Server) SetInstanceStatus(uuid string, status int) bool {
	s.Lock()
	defer s.Unlock()
	in, ok := s.instances[uuid]
	if !ok {
		return false
	}
	in.status = status
	in.steps.Clear()
	return true
}

// SetGPUStatus sets the status of a GPU model in /gpu/list (1 available, anything else not).
func (s *Server) SetGPUStatus(gpuUUID string, status int) bool {
	s.Lock()
	defer s.Unlock()
	for i := range s.gpus {
		if s.gpus[i].UUID == gpuUUID {
			s.gpus[i].Status = status
			return true
		}
	}
	return false
}

// settle applies every transition that is due. Callers hold the lock.
func (s *Server) settle(now time.Time) {
	for _, id := range s.order {
		s.advanceOne(s.instances[id], now)
	}
}

// advanceOne applies in's transitions due at now, its shutdown timer included.
func (s *Server) advanceOne(in *instance, now time.Time) {
	if in.timerOn && in.timerAt > 0 && in.status == statusRunning && !in.steps.Busy() &&
		!now.Before(time.Unix(in.timerAt, 0)) {
		at := time.Unix(in.timerAt, 0)
		in.timerOn, in.timerAt = false, 0
		in.status = statusShuttingDown
		in.steps.Then(at, s.StepDelay(), statusStopped, nil)
	}
	in.steps.Advance(now, &in.status)
}

func (s *Server) seedSample() {
	created := time.Date(2023, 12, 21, 8, 0, 0, 0, time.UTC).Unix()
	in := &instance{
		uuid: SampleInstanceUUID, status: statusRunning, title: "我的PyTorch实例",
		created: created, started: created + 60, saveStatus: 2, chargingType: 1,
		imageUUID: s.market[0].UUID, imageName: "PyTorch 2.0 环境", imageTag: "v2.0",
		gpuUUID: s.gpus[0].UUID, gpuName: s.gpus[0].Name, gpuNums: 1,
		password: "demo-Xk3p9Qw7Lm2v",
	}
	if err := s.listen(in); err != nil {
		panic("cytest: cannot start the sample instance's machine: " + err.Error())
	}
	s.add(in)
}

func (s *Server) add(in *instance) {
	s.instances[in.uuid] = in
	s.order = append(s.order, in.uuid)
}

func (s *Server) remove(uuid string) {
	s.Forget(uuid)
	delete(s.instances, uuid)
	for i, id := range s.order {
		if id == uuid {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

func (s *Server) nextSeq() int {
	s.seq++
	return s.seq
}

// Chenyu's instance status codes (vendor-api.md 4.6).
const (
	statusCreating     = 1
	statusRunning      = 2
	statusShuttingDown = 21
	statusStopped      = 22
	statusAbnormal     = 23
	statusStarting     = 24
	statusRestarting   = 27
)

var statusNames = map[int]string{
	0: "已创建 created", 1: "初始化中 initializing", 2: "运行中 running", 3: "关机中 stopping", 4: "已关机 stopped",
	21: "关机中 shutting down", 22: "已关机 stopped", 23: "异常关机 abnormally stopped", 24: "开机中 starting", 27: "重启中 restarting",
}

func statusName(st int) string {
	if n, ok := statusNames[st]; ok {
		return n
	}
	return "未知 unknown"
}

type instance struct {
	uuid, title                    string
	status                         int
	steps                          emu.Steps[int]
	created, started               int64
	saveStatus, chargingType       int
	timerOn                        bool
	timerAt                        int64
	imageUUID, imageName, imageTag string
	podUUID                        string // set when created from a Pod
	gpuUUID, gpuName               string
	gpuNums                        int
	password                       string
	machine                        *machinetest.Machine
	host                           string // of the machine's SSH server
	port                           int
}

// markStarted records when the instance came up: the step that makes it running calls it.
func (in *instance) markStarted(at time.Time) { in.started = at.Unix() }

func (in *instance) state() InstanceState {
	return InstanceState{UUID: in.uuid, Status: in.status, Title: in.title, SaveImageStatus: in.saveStatus,
		ShutdownEnabled: in.timerOn, ShutdownTime: in.timerAt, GPUUUID: in.gpuUUID, GPUNums: in.gpuNums,
		ImageUUID: in.imageUUID, PodTag: in.imageTag, CreateTime: in.created, StartTime: in.started}
}

func (in *instance) short() string {
	id := strings.TrimPrefix(in.uuid, "inst_")
	if len(id) > 8 {
		id = id[:8]
	}
	return id
}

type privateImage struct {
	uuid, title, remark, instance string
	podUUID, podTag               string
	sizeGB                        float64
	status                        int
	created                       int64
}

type price struct {
	Hour  *float64 `json:"hour,omitempty"`
	Day   *float64 `json:"day,omitempty"`
	Week  *float64 `json:"week,omitempty"`
	Month *float64 `json:"month,omitempty"`
	Year  *float64 `json:"year,omitempty"`
}

type gpu struct {
	Name   string `json:"gpu_name"`
	UUID   string `json:"gpu_uuid"`
	Status int    `json:"status"`
	Price  price  `json:"price"`
}

type pod struct {
	Title  string   `json:"title"`
	UUID   string   `json:"uuid"`
	Remark string   `json:"remark"`
	Tags   []string `json:"pod_tag"`
	Price  price    `json:"price"`
}

type marketImage struct {
	UUID       string            `json:"uuid"`
	Components map[string]string `json:"components"`
	Size       int64             `json:"size"`
	CreatedAt  int64             `json:"created_at"`
	UpdatedAt  int64             `json:"updated_at"`
}

func (m marketImage) matches(cuda, python string) bool {
	return (cuda == "" || strings.HasPrefix(m.Components["CUDA"], cuda) || strings.HasPrefix(cuda, m.Components["CUDA"]+".")) &&
		(python == "" || m.Components["Python"] == python)
}

func f(v float64) *float64 { return &v }

// extraGPUs makes up n GPU models, every tenth one sold out, priced 1.00 to 20.99 CNY/h.
func extraGPUs(n int) []gpu {
	models := []string{"NVIDIA RTX 4090", "NVIDIA RTX 3090", "NVIDIA A100 80G", "NVIDIA L40S", "NVIDIA H800 80G"}
	out := make([]gpu, n)
	for i := range out {
		status := 1
		if i%10 == 9 {
			status = 0
		}
		out[i] = gpu{Name: models[i%len(models)], UUID: fmt.Sprintf("gpu_%08x-0000-4000-8000-%012x", i, i), Status: status,
			Price: price{Hour: f(1 + float64(i%2000)/100)}}
	}
	return out
}

// catalog is the GPU list of the documents (RTX 4090 at 5.50/h, RTX 3080) plus a few more
// models with plausible prices, some Pods and market images.
func catalog() ([]gpu, []pod, []marketImage) {
	gpus := []gpu{
		{Name: "NVIDIA RTX 4090", UUID: "gpu_12345678-1234-1234-1234-123456789012", Status: 1,
			Price: price{Hour: f(5.50), Day: f(120.00), Week: f(800.00), Month: f(3200.00), Year: f(35000.00)}},
		{Name: "NVIDIA RTX 3080", UUID: "gpu_23456789-2345-2345-2345-234567890123", Status: 0,
			Price: price{Hour: f(1.90), Day: f(42.00), Month: f(1100.00)}},
		{Name: "NVIDIA RTX 3090", UUID: "gpu_3a0c5e21-7b4d-4e8f-9a1b-2c3d4e5f6a7b", Status: 1,
			Price: price{Hour: f(2.60), Day: f(58.00), Week: f(380.00), Month: f(1500.00), Year: f(16000.00)}},
		{Name: "NVIDIA A100 80G", UUID: "gpu_4b1d6f32-8c5e-4f90-ab2c-3d4e5f6a7b8c", Status: 1,
			Price: price{Hour: f(9.80), Day: f(220.00), Week: f(1450.00), Month: f(5800.00), Year: f(62000.00)}},
		{Name: "NVIDIA H800 80G", UUID: "gpu_5c2e7a43-9d6f-4a01-bc3d-4e5f6a7b8c9d", Status: 1,
			Price: price{Hour: f(16.50), Day: f(380.00), Week: f(2500.00), Month: f(9900.00)}},
		{Name: "NVIDIA L40S", UUID: "gpu_6d3f8b54-ae70-4b12-8d4e-5f6a7b8c9d0e", Status: 1,
			Price: price{Hour: f(4.20)}},
		// A second RTX 4090 pool (another site), dearer: what an agent falls back from.
		{Name: "NVIDIA RTX 4090", UUID: "gpu_7e4a9c65-0f12-4c34-8d56-7a8b9c0d1e2f", Status: 1,
			Price: price{Hour: f(5.80), Day: f(128.00), Month: f(3400.00)}},
	}
	pods := []pod{
		{Title: "PyTorch深度学习环境", UUID: "pod_12345678-1234-1234-1234-123456789012", Remark: "PyTorch 2.0 + JupyterLab, 开箱即用",
			Tags: []string{"v1.0", "v2.0"}, Price: price{Hour: f(0)}},
		{Title: "ComfyUI", UUID: "pod_7e4a9c65-bf81-4c23-9e5f-6a7b8c9d0e1f", Remark: "ComfyUI 工作流, 预装常用节点与模型",
			Tags: []string{"v0.3.10", "v0.3.27"}, Price: price{Hour: f(0.50), Day: f(10.00)}},
		{Title: "Stable Diffusion WebUI", UUID: "pod_8f5bad76-c092-4d34-af60-7b8c9d0e1f2a", Remark: "AUTOMATIC1111 WebUI 1.10",
			Tags: []string{"1.10.1"}, Price: price{Hour: f(0.30)}},
		{Title: "Ollama + Open WebUI", UUID: "pod_90a6be87-d1a3-4e45-b071-8c9d0e1f2a3b", Remark: "本地大模型推理",
			Tags: nil, Price: price{}},
	}
	const gib = int64(1) << 30
	comp := func(cuda, pytorch, tf, paddle, python, ubuntu string) map[string]string {
		return map[string]string{"CUDA": cuda, "PyTorch": pytorch, "TensorFlow": tf, "PaddlePaddle": paddle, "Python": python, "Ubuntu": ubuntu}
	}
	market := []marketImage{
		{UUID: "img_87654321-4321-4321-4321-210987654321", Components: comp("11.8", "2.1", "", "", "3.10", "22.04"),
			Size: 14 * gib, CreatedAt: 1700000000, UpdatedAt: 1703145600},
		{UUID: "img_a1b2c3d4-e5f6-4789-8abc-def012345678", Components: comp("12.1", "2.3", "", "", "3.11", "22.04"),
			Size: 17*gib + gib/2, CreatedAt: 1715000000, UpdatedAt: 1718000000},
		{UUID: "img_b2c3d4e5-f6a7-4890-9bcd-ef0123456789", Components: comp("12.2", "", "2.15", "", "3.10", "22.04"),
			Size: 12 * gib, CreatedAt: 1710000000, UpdatedAt: 1712000000},
		{UUID: "img_c3d4e5f6-a7b8-4901-acde-f01234567890", Components: comp("11.8", "", "", "2.6", "3.10", "20.04"),
			Size: 11 * gib, CreatedAt: 1708000000, UpdatedAt: 1708000000},
		{UUID: "img_d4e5f6a7-b8c9-4012-bdef-012345678901", Components: comp("12.4", "", "", "", "3.12", "22.04"),
			Size: 6 * gib, CreatedAt: 1720000000, UpdatedAt: 1720000000},
	}
	return gpus, pods, market
}

func (s *Server) gpuByUUID(id string) (gpu, bool) {
	for _, g := range s.gpus {
		if g.UUID == id {
			return g, true
		}
	}
	return gpu{}, false
}

func (s *Server) podByUUID(id string) (pod, bool) {
	for _, p := range s.pods {
		if p.UUID == id {
			return p, true
		}
	}
	return pod{}, false
}

// imageName builds a market image's display name from its components.
func imageName(m marketImage) string {
	var parts []string
	for _, k := range []string{"PyTorch", "TensorFlow", "PaddlePaddle", "CUDA", "Python", "Ubuntu"} {
		if v := m.Components[k]; v != "" {
			parts = append(parts, k+" "+v)
		}
	}
	return strings.Join(parts, " / ")
}

func newUUID(prefix string, n int) string {
	return fmt.Sprintf("%s%08x-5e1f-4%03x-8%03x-%012x", prefix, 0x9c000000+n, n%0x1000, (n*7)%0x1000, 0xd3a0000000+int64(n))
}
