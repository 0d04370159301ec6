package cytest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/emu"
)

// Business refusals carry this code: the documents define only 0, 2 and -2, and say every
// other non-zero code is a business error whose msg gives the reason.
const codeBusiness = 1

// reply is one envelope: {"code":..,"msg":..,"data":..}; data is left out when nil, as
// Chenyu's action answers do.
type reply struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Data any    `json:"data,omitempty"`
}

func ok(data any) reply     { return reply{Code: 0, Msg: "success", Data: data} }
func done(msg string) reply { return reply{Code: 0, Msg: msg} }

// refuse is a business refusal in Chinese and English, as the documents' msg fields are.
func refuse(zh, en string, args ...any) reply {
	return reply{Code: codeBusiness, Msg: zh + " / " + fmt.Sprintf(en, args...)}
}

func badParam(zh, en string, args ...any) reply {
	return refuse("参数错误: "+zh, "invalid parameter: "+en, args...)
}

var notFound = refuse("实例不存在", "instance not found")

type route struct {
	method string
	public bool // no key needed (GET /image/market/list)
	handle func(s *Server, q url.Values, body []byte) reply
}

var routes = map[string]route{
	"/instance/list":            {method: http.MethodGet, handle: (*Server).listInstances},
	"/instance/info":            {method: http.MethodGet, handle: (*Server).instanceInfo},
	"/instance/create_by_image": {method: http.MethodPost, handle: (*Server).createByImage},
	"/instance/create_by_pod":   {method: http.MethodPost, handle: (*Server).createByPod},
	"/instance/startup":         {method: http.MethodPost, handle: (*Server).startup},
	"/instance/shutdown":        {method: http.MethodPost, handle: (*Server).shutdown},
	"/instance/restart":         {method: http.MethodPost, handle: (*Server).restart},
	"/instance/destroy":         {method: http.MethodPost, handle: (*Server).destroy},
	"/instance/save_image":      {method: http.MethodPost, handle: (*Server).saveImage},
	"/instance/shutdown_timer":  {method: http.MethodPost, handle: (*Server).shutdownTimer},
	"/instance/update_title":    {method: http.MethodPost, handle: (*Server).updateTitle},
	"/gpu/list":                 {method: http.MethodGet, handle: (*Server).gpuList},
	"/pod/list":                 {method: http.MethodGet, handle: (*Server).podList},
	"/image/market/list":        {method: http.MethodGet, public: true, handle: (*Server).marketList},
	"/image/private/list":       {method: http.MethodGet, handle: (*Server).privateList},
	"/balance/info":             {method: http.MethodGet, handle: (*Server).balanceInfo},
}

// serve answers one request; the skeleton holds the lock and has applied due transitions.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.count++
	if n := s.opts.RateLimitEvery; n > 0 && s.count%n == 0 {
		w.Header().Set("Retry-After", "2")
		write(w, http.StatusTooManyRequests, reply{Code: 429, Msg: "请求过于频繁, 请稍后再试 / too many requests, retry later"})
		return
	}
	rt, found := routes[strings.TrimPrefix(r.URL.Path, PathPrefix)]
	if !found || !strings.HasPrefix(r.URL.Path, PathPrefix+"/") {
		write(w, http.StatusNotFound, reply{Code: 404, Msg: "接口不存在 / no such endpoint"})
		return
	}
	if r.Method != rt.method {
		write(w, http.StatusMethodNotAllowed, reply{Code: 405, Msg: "请求方法错误 / method not allowed: use " + rt.method})
		return
	}
	if !rt.public && r.Header.Get("Authorization") != "Bearer "+s.Credential() {
		write(w, http.StatusUnauthorized, reply{Code: 2, Msg: "未登录或API Key无效 / not logged in: missing or invalid API key"})
		return
	}
	if rt.method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		write(w, http.StatusOK, badParam("请使用JSON请求体", "the body must be JSON (Content-Type: application/json)"))
		return
	}
	write(w, http.StatusOK, rt.handle(s, r.URL.Query(), body))
}

func write(w http.ResponseWriter, status int, rep reply) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rep)
}

// decode reads a JSON object body into v; unknown fields are ignored, as most servers do, but
// wrong types are refused.
func decode(body []byte, v any) (reply, bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		return badParam("请求体为空", "empty body"), false
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badParam("请求体格式错误", "malformed JSON body: %v", err), false
	}
	return reply{}, true
}

// paging reads page and page_size. When both are absent and all is true, everything is one
// page; otherwise page defaults to 1 and page_size to 10 (at most maxSize, as servers cap it).
func paging(q url.Values, all bool, maxSize int) (page, size int, r reply, good bool) {
	if q.Get("page") == "" && q.Get("page_size") == "" && all {
		return 1, math.MaxInt32, reply{}, true
	}
	page, size = 1, 10
	for name, dst := range map[string]*int{"page": &page, "page_size": &size} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, badParam(name+" 必须为正整数", "%s must be a positive integer", name), false
		}
		*dst = n
	}
	if size > maxSize {
		size = maxSize
	}
	return page, size, reply{}, true
}

func pageOf[T any](items []T, page, size int) []T {
	start := (page - 1) * size
	if size == math.MaxInt32 {
		start = 0
	}
	if start >= len(items) || start < 0 {
		return []T{}
	}
	end := start + size
	if end > len(items) || end < start {
		end = len(items)
	}
	return items[start:end]
}

// --- wire shapes of answers --------------------------------------------------------------

type sshInfo struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"`
}

type service struct {
	Title    string   `json:"title"`
	URL      string   `json:"url"`
	PortType string   `json:"port_type"`
	Protocol string   `json:"protocol"`
	SSHInfo  *sshInfo `json:"ssh_info,omitempty"`
}

type shutdownRegular struct {
	ShutdownTime int64 `json:"shutdown_time"`
	Enable       bool  `json:"enable"`
}

type instanceJSON struct {
	InstanceUUID    string          `json:"instance_uuid"`
	Status          int             `json:"status"`
	Title           string          `json:"title"`
	CreateTime      int64           `json:"create_time"`
	StartTime       int64           `json:"start_time"`
	ServerURL       []string        `json:"server_url"`
	ServerMap       *[]service      `json:"server_map,omitempty"`
	SaveImageStatus int             `json:"save_image_status"`
	ChargingType    int             `json:"charging_type"`
	ShutdownRegular shutdownRegular `json:"shutdown_regular"`
	ImageUUID       string          `json:"image_uuid"`
	ImageName       string          `json:"image_name"`
	ImageTag        string          `json:"image_tag"`
	GPUUUID         string          `json:"gpu_uuid"`
	GPUName         string          `json:"gpu_name"`
	GPUNums         int             `json:"gpu_nums"`
}

// render answers an instance; the create answer has no server_map (as documented).
func (in *instance) render(withMap bool) instanceJSON {
	short := in.short()
	jupyter := "https://jupyter-" + short + ".chenyu.demo.invalid"
	out := instanceJSON{
		InstanceUUID: in.uuid, Status: in.status, Title: in.title, CreateTime: in.created, StartTime: in.started,
		ServerURL:       []string{jupyter, "https://ssh-" + short + ".chenyu.demo.invalid"},
		SaveImageStatus: in.saveStatus, ChargingType: in.chargingType,
		ShutdownRegular: shutdownRegular{ShutdownTime: in.timerAt, Enable: in.timerOn},
		ImageUUID:       in.imageUUID, ImageName: in.imageName, ImageTag: in.imageTag,
		GPUUUID: in.gpuUUID, GPUName: in.gpuName, GPUNums: in.gpuNums,
	}
	if withMap {
		m := []service{{Title: "Jupyter Lab", URL: jupyter, PortType: "http", Protocol: "tcp"}}
		if strings.Contains(in.imageName, "ComfyUI") {
			app := "https://comfyui-" + short + ".chenyu.demo.invalid"
			out.ServerURL = append(out.ServerURL, app)
			m = append(m, service{Title: "ComfyUI", URL: app, PortType: "http", Protocol: "tcp"})
		}
		m = append(m, service{Title: "SSH Terminal", URL: fmt.Sprintf("ssh://%s:%d", in.host, in.port), PortType: "ssh", Protocol: "tcp",
			SSHInfo: &sshInfo{Host: in.host, Port: in.port, Username: sshUser, Password: in.password}})
		out.ServerMap = &m
	}
	return out
}

// --- instances -----------------------------------------------------------------------------

func (s *Server) listInstances(q url.Values, _ []byte) reply {
	page, size, r, good := paging(q, false, s.maxPageSize())
	if !good {
		return r
	}
	all := make([]instanceJSON, 0, len(s.order))
	for _, id := range s.order {
		all = append(all, s.instances[id].render(true))
	}
	return ok(map[string]any{"instance_list": pageOf(all, page, size), "total": len(all)})
}

func (s *Server) instanceInfo(q url.Values, _ []byte) reply {
	id := q.Get("instance_uuid")
	if id == "" {
		return badParam("instance_uuid 必填", "instance_uuid is required")
	}
	in, found := s.instances[id]
	if !found {
		return notFound
	}
	return ok(in.render(true))
}

type createBody struct {
	ImageUUID string `json:"image_uuid"`
	PodUUID   string `json:"pod_uuid"`
	PodTag    string `json:"pod_tag"`
	GPUUUID   string `json:"gpu_uuid"`
	GPUNums   *int   `json:"gpu_nums"`
}

func validNums(n int) bool { return n == 1 || n == 2 || n == 4 || n == 8 }

// checkGPU validates gpu_uuid and gpu_nums and that the account can pay the first hour.
func (s *Server) checkGPU(gpuUUID string, nums *int) (gpu, reply, bool) {
	if gpuUUID == "" {
		return gpu{}, badParam("gpu_uuid 必填", "gpu_uuid is required"), false
	}
	if nums == nil {
		return gpu{}, badParam("gpu_nums 必填", "gpu_nums is required"), false
	}
	if !validNums(*nums) {
		return gpu{}, badParam("gpu_nums 可选值: 1/2/4/8", "gpu_nums must be 1, 2, 4 or 8, not %d", *nums), false
	}
	g, found := s.gpuByUUID(gpuUUID)
	if !found {
		return gpu{}, refuse("GPU型号不存在", "GPU model %s not found", gpuUUID), false
	}
	if g.Status != 1 || s.Outcome(g.UUID) == emu.LaunchSoldOut {
		return gpu{}, refuse("GPU资源不足, 请稍后再试", "not enough free %s GPUs, try later", g.Name), false
	}
	if g.Price.Hour != nil && s.balance+s.card < *g.Price.Hour*float64(*nums) {
		return gpu{}, refuse("余额不足", "insufficient balance"), false
	}
	return g, reply{}, true
}

// newInstance makes an instance of g as the launch outcome of g says (the caller has checked
// it is not emu.LaunchSoldOut), with its machine; a refusal when none can be started.
func (s *Server) newInstance(g gpu, nums int, title string) (*instance, reply, bool) {
	n := s.nextSeq()
	now := s.Now()
	in := &instance{uuid: newUUID("inst_", n), status: statusCreating, title: title, created: now.Unix(),
		chargingType: 1, gpuUUID: g.UUID, gpuName: g.Name, gpuNums: nums, password: password()}
	if err := s.listen(in); err != nil {
		return nil, reply{Code: -2, Msg: "系统错误 / system error: cannot bind an SSH port: " + err.Error()}, false
	}
	switch s.Outcome(g.UUID) {
	case emu.LaunchNeverRuns:
	case emu.LaunchFails:
		in.steps.Then(now, s.StepDelay(), statusAbnormal, nil)
	default:
		in.steps.Then(now, s.StepDelay(), statusRunning, in.markStarted)
	}
	return in, reply{}, true
}

func (s *Server) createByImage(_ url.Values, body []byte) reply {
	var b createBody
	if r, good := decode(body, &b); !good {
		return r
	}
	if b.ImageUUID == "" {
		return badParam("image_uuid 必填", "image_uuid is required")
	}
	g, r, good := s.checkGPU(b.GPUUUID, b.GPUNums)
	if !good {
		return r
	}
	name := ""
	for _, m := range s.market {
		if m.UUID == b.ImageUUID {
			name = imageName(m)
		}
	}
	for _, p := range s.private {
		if p.uuid == b.ImageUUID {
			if p.status != 2 {
				return refuse("镜像尚未保存完成, 当前状态不可用", "image %s is not saved yet (save status %d)", p.uuid, p.status)
			}
			name = p.title
		}
	}
	if name == "" {
		return refuse("镜像不存在", "image %s not found", b.ImageUUID)
	}
	in, r, good := s.newInstance(g, *b.GPUNums, name)
	if !good {
		return r
	}
	in.imageUUID, in.imageName, in.imageTag = b.ImageUUID, name, "latest"
	s.add(in)
	return ok(in.render(false))
}

func (s *Server) createByPod(_ url.Values, body []byte) reply {
	var b createBody
	if r, good := decode(body, &b); !good {
		return r
	}
	if b.PodUUID == "" {
		return badParam("pod_uuid 必填", "pod_uuid is required")
	}
	g, r, good := s.checkGPU(b.GPUUUID, b.GPUNums)
	if !good {
		return r
	}
	p, found := s.podByUUID(b.PodUUID)
	if !found {
		return refuse("Pod不存在", "pod %s not found", b.PodUUID)
	}
	tag := b.PodTag
	if tag == "" && len(p.Tags) > 0 {
		tag = p.Tags[len(p.Tags)-1]
	}
	if b.PodTag != "" && !contains(p.Tags, b.PodTag) {
		return refuse("Pod版本不存在", "pod %s has no version %q (versions: %s)", p.UUID, b.PodTag, strings.Join(p.Tags, ", "))
	}
	in, r, good := s.newInstance(g, *b.GPUNums, p.Title)
	if !good {
		return r
	}
	in.imageUUID, in.imageName, in.imageTag, in.podUUID = p.UUID, p.Title, tag, p.UUID
	s.add(in)
	return ok(in.render(false))
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

type instanceBody struct {
	InstanceUUID string `json:"instance_uuid"`
}

// target decodes the body and finds its instance.
func (s *Server) target(body []byte, v any, id func() string) (*instance, reply, bool) {
	if r, good := decode(body, v); !good {
		return nil, r, false
	}
	if id() == "" {
		return nil, badParam("instance_uuid 必填", "instance_uuid is required"), false
	}
	in, found := s.instances[id()]
	if !found {
		return nil, notFound, false
	}
	return in, reply{}, true
}

// wrongState refuses an action in the instance's current state, in both languages.
func wrongState(in *instance, action, need string) reply {
	return refuse("实例当前状态不允许"+action, "instance state does not allow %s: it is %s (status %d); %s",
		actionEN[action], statusName(in.status), in.status, need)
}

var actionEN = map[string]string{"开机": "startup", "关机": "shutdown", "重启": "restart", "销毁": "destroy",
	"保存镜像": "save_image", "设置定时关机": "shutdown_timer"}

// settled refuses while a transition or an image save is under way.
func settled(in *instance, action string) (reply, bool) {
	if in.steps.Busy() {
		return refuse("实例正在变更状态, 请稍后再试", "the instance is changing state (status %d %s); try %s later",
			in.status, statusName(in.status), actionEN[action]), false
	}
	if in.saveStatus == 1 {
		return refuse("实例正在保存镜像, 请稍后再试", "an image of this instance is being saved; try %s later", actionEN[action]), false
	}
	return reply{}, true
}

type startupBody struct {
	InstanceUUID string `json:"instance_uuid"`
	GPUUUID      string `json:"gpu_uuid"`
	GPUNums      *int   `json:"gpu_nums"`
}

func (s *Server) startup(_ url.Values, body []byte) reply {
	var b startupBody
	in, r, good := s.target(body, &b, func() string { return b.InstanceUUID })
	if !good {
		return r
	}
	if r, good := settled(in, "开机"); !good {
		return r
	}
	if in.status != statusStopped && in.status != statusAbnormal && in.status != 4 {
		return wrongState(in, "开机", "startup needs a stopped instance (22)")
	}
	gpuUUID, nums := in.gpuUUID, in.gpuNums
	if b.GPUUUID != "" {
		gpuUUID = b.GPUUUID
	}
	if b.GPUNums != nil {
		nums = *b.GPUNums
	}
	g, r, good := s.checkGPU(gpuUUID, &nums)
	if !good {
		return r
	}
	if err := in.machine.SetGPUs(g.Name, nums, 0); err != nil {
		return reply{Code: -2, Msg: "系统错误 / system error: " + err.Error()}
	}
	in.gpuUUID, in.gpuName, in.gpuNums = g.UUID, g.Name, nums
	in.status = statusStarting
	in.steps.Then(s.Now(), s.StepDelay(), statusRunning, in.markStarted)
	return done("启动成功")
}

func (s *Server) shutdown(_ url.Values, body []byte) reply {
	var b instanceBody
	in, r, good := s.target(body, &b, func() string { return b.InstanceUUID })
	if !good {
		return r
	}
	if r, good := settled(in, "关机"); !good {
		return r
	}
	if in.status != statusRunning {
		return wrongState(in, "关机", "shutdown needs a running instance (2)")
	}
	in.status, in.timerOn, in.timerAt = statusShuttingDown, false, 0
	in.steps.Then(s.Now(), s.StepDelay(), statusStopped, nil)
	return done("关机成功")
}

func (s *Server) restart(_ url.Values, body []byte) reply {
	var b instanceBody
	in, r, good := s.target(body, &b, func() string { return b.InstanceUUID })
	if !good {
		return r
	}
	if r, good := settled(in, "重启"); !good {
		return r
	}
	if in.status != statusRunning {
		return wrongState(in, "重启", "restart needs a running instance (2)")
	}
	in.status = statusRestarting
	in.steps.Then(s.Now(), s.StepDelay(), statusRunning, in.markStarted)
	return done("重启成功")
}

func (s *Server) destroy(_ url.Values, body []byte) reply {
	var b instanceBody
	in, r, good := s.target(body, &b, func() string { return b.InstanceUUID })
	if !good {
		return r
	}
	if in.saveStatus == 1 {
		return refuse("实例正在保存镜像, 请稍后再试", "an image of this instance is being saved; try destroy later")
	}
	switch in.status {
	case statusShuttingDown, statusRestarting, 3:
		return wrongState(in, "销毁", "wait until the instance is stopped or running")
	}
	s.remove(in.uuid)
	return done("销毁成功")
}

type saveBody struct {
	InstanceUUID string `json:"instance_uuid"`
	ImageName    string `json:"image_name"`
	Remark       string `json:"remark"`
}

func (s *Server) saveImage(_ url.Values, body []byte) reply {
	var b saveBody
	in, r, good := s.target(body, &b, func() string { return b.InstanceUUID })
	if !good {
		return r
	}
	if r, good := settled(in, "保存镜像"); !good {
		return r
	}
	if in.status != statusRunning {
		return wrongState(in, "保存镜像", "save_image needs a running instance (2)")
	}
	n := s.nextSeq()
	name := b.ImageName
	if name == "" {
		name = fmt.Sprintf("image-%s-%d", in.short(), n)
	}
	if utf8.RuneCountInString(name) > 64 {
		return badParam("镜像名称过长", "image_name longer than 64 characters")
	}
	for _, p := range s.private {
		if p.title == name {
			return refuse("镜像名称已存在", "image name %q already exists", name)
		}
	}
	now := s.Now()
	img := &privateImage{uuid: newUUID("img_", n), title: name, remark: b.Remark, instance: in.uuid,
		sizeGB: 8.5 + float64(in.gpuNums)/2, status: 1, created: now.Unix()}
	if in.podUUID != "" {
		img.podUUID, img.podTag = in.podUUID, in.imageTag
	}
	s.private = append(s.private, img)
	in.saveStatus = 1
	in.steps.Then(now, s.StepDelay(), statusShuttingDown, func(time.Time) {
		in.saveStatus, img.status = 2, 2
		in.timerOn, in.timerAt = false, 0
	})
	in.steps.Then(now, s.StepDelay(), statusStopped, nil)
	return done("保存成功")
}

type timerBody struct {
	InstanceUUID string `json:"instance_uuid"`
	Enable       *bool  `json:"enable"`
	ShutdownTime *int64 `json:"shutdown_time"`
}

func (s *Server) shutdownTimer(_ url.Values, body []byte) reply {
	var b timerBody
	in, r, good := s.target(body, &b, func() string { return b.InstanceUUID })
	if !good {
		return r
	}
	if b.Enable == nil {
		return badParam("enable 必填", "enable is required")
	}
	if b.ShutdownTime == nil {
		return badParam("shutdown_time 必填", "shutdown_time is required")
	}
	if in.status != statusRunning {
		return wrongState(in, "设置定时关机", "only a running instance (2) takes a shutdown timer")
	}
	if !*b.Enable || *b.ShutdownTime == 0 {
		in.timerOn, in.timerAt = false, 0
		return done("取消成功")
	}
	if earliest := s.Now().Add(5 * time.Minute).Unix(); *b.ShutdownTime < earliest {
		return badParam("定时关机时间最小为5分钟后", "shutdown_time must be a Unix timestamp in seconds at least 5 minutes ahead (>= %d), not %d",
			earliest, *b.ShutdownTime)
	}
	in.timerOn, in.timerAt = true, *b.ShutdownTime
	return done("设置成功")
}

type titleBody struct {
	InstanceUUID string `json:"instance_uuid"`
	Title        string `json:"title"`
}

func (s *Server) updateTitle(_ url.Values, body []byte) reply {
	var b titleBody
	in, r, good := s.target(body, &b, func() string { return b.InstanceUUID })
	if !good {
		return r
	}
	if strings.TrimSpace(b.Title) == "" {
		return badParam("title 必填", "title is required")
	}
	if utf8.RuneCountInString(b.Title) > 50 {
		return badParam("实例名称最长50个字符", "title longer than 50 characters")
	}
	in.title = b.Title
	return done("修改成功")
}

// --- catalog and account ---------------------------------------------------------------------

func (s *Server) gpuList(q url.Values, _ []byte) reply {
	page, size, r, good := paging(q, true, s.maxPageSize())
	if !good {
		return r
	}
	return ok(map[string]any{"gpu_list": pageOf(s.gpus, page, size), "total": len(s.gpus)})
}

func (s *Server) podList(q url.Values, _ []byte) reply {
	page, size, r, good := paging(q, false, s.maxPageSize())
	if !good {
		return r
	}
	name := strings.ToLower(q.Get("name"))
	list := []pod{}
	for _, p := range s.pods {
		if name == "" || strings.Contains(strings.ToLower(p.Title), name) {
			list = append(list, p)
		}
	}
	return ok(map[string]any{"pod_list": pageOf(list, page, size), "total": len(list)})
}

func (s *Server) marketList(q url.Values, _ []byte) reply {
	page, size, r, good := paging(q, false, s.maxPageSize())
	if !good {
		return r
	}
	list := []marketImage{}
	for _, m := range s.market {
		if m.matches(q.Get("cuda_version"), q.Get("python_version")) {
			list = append(list, m)
		}
	}
	return ok(map[string]any{"image_list": pageOf(list, page, size), "total": len(list), "page": page, "page_size": size})
}

type privateJSON struct {
	Title           string  `json:"title"`
	UUID            string  `json:"uuid"`
	Remark          string  `json:"remark"`
	LayerCount      int     `json:"layer_count"`
	Size            float64 `json:"size"`
	PodUUID         string  `json:"pod_uuid"`
	PodTag          string  `json:"pod_tag"`
	SaveImageStatus int     `json:"save_image_status"`
	CreateTime      int64   `json:"create_time"`
}

func (s *Server) privateList(q url.Values, _ []byte) reply {
	page, size, r, good := paging(q, true, s.maxPageSize())
	if !good {
		return r
	}
	list := make([]privateJSON, 0, len(s.private))
	for _, p := range s.private {
		list = append(list, privateJSON{Title: p.title, UUID: p.uuid, Remark: p.remark, LayerCount: 15, Size: p.sizeGB,
			PodUUID: p.podUUID, PodTag: p.podTag, SaveImageStatus: p.status, CreateTime: p.created})
	}
	return ok(map[string]any{"image_list": pageOf(list, page, size), "total": len(list)})
}

func (s *Server) balanceInfo(url.Values, []byte) reply {
	return ok(map[string]any{"balance": s.balance, "card_balance": s.card})
}

// password makes an instance's SSH password; random, so that tests can look for leaks.
func password() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return "cy" + hex.EncodeToString(b)
}
