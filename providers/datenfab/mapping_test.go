package datenfab

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

func TestStateMapping(t *testing.T) {
	tests := []struct {
		raw  string
		want providers.State
	}{
		{"Creating", providers.StatePending},
		{"creating", providers.StatePending},
		{"Pending", providers.StatePending},
		{"Starting", providers.StateStarting},
		{"Running", providers.StateRunning},
		{"RUNNING", providers.StateRunning},
		{"ShuttingDown", providers.StateStopping},
		{"Shutting Down", providers.StateStopping},
		{"shutting_down", providers.StateStopping},
		{"Stopping", providers.StateStopping},
		{"Shutdown", providers.StateStopped},
		{"Shut Down", providers.StateStopped},
		{"Stopped", providers.StateStopped},
		{"Deleting", providers.StateDeleting},
		{"Failed", providers.StateError},
		{"Error", providers.StateError},
		{"", providers.StateUnknown},
		{"Hibernating", providers.StateUnknown},
	}
	logs := &logBuffer{}
	p := New(Config{})
	p.log = zerolog.New(logs).Level(zerolog.DebugLevel)
	for _, tt := range tests {
		if got := p.stateOf(tt.raw, "instance-x"); got != tt.want {
			t.Errorf("stateOf(%q) = %s, want %s", tt.raw, got, tt.want)
		}
	}
	if !strings.Contains(logs.String(), "Hibernating") {
		t.Errorf("unknown status not logged at debug: %s", logs.String())
	}
}

func TestParseSSH(t *testing.T) {
	tests := []struct {
		cmd        string
		user, host string
		port       int
		ok         bool
	}{
		{"ssh -p30099 root@h.example.invalid", "root", "h.example.invalid", 30099, true},
		{"ssh -p 30099 root@h.example.invalid", "root", "h.example.invalid", 30099, true},
		{"ssh root@h.example.invalid", "root", "h.example.invalid", 22, true},
		{"ssh h.example.invalid", "", "h.example.invalid", 22, true},
		{"ssh -l ubuntu -p 2222 h.example.invalid", "ubuntu", "h.example.invalid", 2222, true},
		{"ssh -o StrictHostKeyChecking=no -p 2200 root@10.0.0.1", "root", "10.0.0.1", 2200, true},
		{"ssh -oStrictHostKeyChecking=no -4 root@h", "root", "h", 22, true},
		{"ssh://root@h.example.invalid:30100", "root", "h.example.invalid", 30100, true},
		{"  ssh   -p30099   root@h  ", "root", "h", 30099, true},
		{"ssh -p abc root@h", "", "", 0, false},
		{"ssh -p 70000 root@h", "", "", 0, false},
		{"ssh -p", "", "", 0, false},
		{"ssh", "", "", 0, false},
		{"connect via console", "", "", 0, false},
		{"ssh root@bad;host", "", "", 0, false},
		{"", "", "", 0, false},
	}
	for _, tt := range tests {
		user, host, port, ok := parseSSH(tt.cmd)
		if ok != tt.ok || (ok && (user != tt.user || host != tt.host || port != tt.port)) {
			t.Errorf("parseSSH(%q) = %q %q %d %v, want %q %q %d %v", tt.cmd, user, host, port, ok, tt.user, tt.host, tt.port, tt.ok)
		}
	}
}

func TestUnparseableSSHKeepsTheRawCommandOnly(t *testing.T) {
	c := connectionOf(&wireServers{SSH: &wireSSH{SSHAddr: "use the web terminal", SSHPassword: "pw"}})
	if c == nil || c.SSHCommand != "use the web terminal" || c.SSHHost != "" || c.SSHPort != 0 || c.SSHPassword != "pw" {
		t.Errorf("connection = %+v", c)
	}
	if connectionOf(&wireServers{}) != nil {
		t.Error("empty servers must give no connection")
	}
}

func TestQuantityGB(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"96Gi", 96}, {"96G", 96}, {"2048Mi", 2}, {"98304Mi", 96}, {"100000M", 100}, {"1Ti", 1024}, {"2T", 2000},
		{"103079215104", 96}, {"1.5Gi", 2}, {"", 0}, {"lots", 0}, {"-1Gi", 0},
	}
	for _, tt := range tests {
		if got := quantityGB(tt.in); got != tt.want {
			t.Errorf("quantityGB(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestCPUCount(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{{"16", 16}, {"16000m", 16}, {"500m", 1}, {"", 0}, {"x", 0}}
	for _, tt := range tests {
		if got := cpuCount(tt.in); got != tt.want {
			t.Errorf("cpuCount(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestLeaseEnd(t *testing.T) {
	c := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		costTime string
		want     *time.Time
	}{
		{"3D", ptr(c.AddDate(0, 0, 3))},
		{"2W", ptr(c.AddDate(0, 0, 14))},
		{"1M", ptr(c.AddDate(0, 1, 0))},
		{"1m", ptr(c.AddDate(0, 1, 0))},
		{"", nil}, {"0D", nil}, {"+3D", nil}, {"3Y", nil}, {"D", nil},
	}
	for _, tt := range tests {
		got := leaseEnd(c, tt.costTime)
		if (got == nil) != (tt.want == nil) || (got != nil && !got.Equal(*tt.want)) {
			t.Errorf("leaseEnd(%q) = %v, want %v", tt.costTime, got, tt.want)
		}
	}
}

func TestUnitPriceOnlyWhenPlausibleHourlyCNY(t *testing.T) {
	tests := []struct {
		name    string
		price   string
		billing providers.BillingMode
		gpus    int
		want    *float64
	}{
		{"sku price", "2.2", providers.BillingHourly, 1, ptr(2.2)},
		{"4 GPUs", "180", providers.BillingHourly, 4, ptr(180.0)},
		{"seed's 250 on one GPU", "250", providers.BillingHourly, 1, nil},
		{"prepaid", "1180", providers.BillingMonthly, 1, nil},
		{"garbage", "abc", providers.BillingHourly, 1, nil},
		{"zero", "0", providers.BillingHourly, 1, nil},
		{"empty", "", providers.BillingHourly, 1, nil},
	}
	p := New(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := wireInstance{Name: "instance-x", Annotations: wireAnnotations{"x.io/unit-price": tt.price}}
			got := p.hourlyPrice(w, tt.billing, tt.gpus)
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("hourlyPrice = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseImageName(t *testing.T) {
	tests := []struct {
		in        string
		repo, tag string
		ok        bool
	}{
		{"my-model", "my-model", "latest", true},
		{"my-model:v1.2", "my-model", "v1.2", true},
		{"image1:v1.1.0", "image1", "v1.1.0", true},
		{"a_b.c", "a_b.c", "latest", true},
		{"My-Model", "", "", false},
		{"my model", "", "", false},
		{"", "", "", false},
		{"x:", "", "", false},
		{"x:-bad", "", "", false},
		{"x/y", "", "", false},
	}
	for _, tt := range tests {
		repo, tag, err := parseImageName("save", tt.in)
		if (err == nil) != tt.ok || repo != tt.repo || tag != tt.tag {
			t.Errorf("parseImageName(%q) = %q %q %v", tt.in, repo, tag, err)
		}
		if err != nil && providers.KindOf(err) != providers.KindInvalid {
			t.Errorf("parseImageName(%q) error kind %s", tt.in, providers.KindOf(err))
		}
	}
}

func TestOfferRowsThatCannotBeLaunchedAreSkipped(t *testing.T) {
	logs := &logBuffer{}
	p := New(Config{})
	p.log = zerolog.New(logs)
	for _, s := range []wireSKU{
		{Name: "X", ClusterName: "c", SKUsID: "1", SellingType: "9", GPUCounts: 1},
		{Name: "X", ClusterName: "c", SKUsID: "1", SellingType: "1", GPUCounts: 0},
		{Name: "X", ClusterName: "", SKUsID: "1", SellingType: "1", GPUCounts: 1},
	} {
		if _, ok := p.offerOf(s); ok {
			t.Errorf("row %+v not skipped", s)
		}
	}
	if strings.Count(logs.String(), "skipped") != 3 {
		t.Errorf("log = %s", logs.String())
	}
	o, ok := p.offerOf(wireSKU{Name: "X", ClusterName: "c", SKUsID: "1", SellingType: "1", GPUCounts: 2, Price: 0, RemainGPUCount: 1})
	if !ok || o.PricePerGPUHour != nil || o.Prices != nil || o.Available || !strings.Contains(o.Notes, "no price") {
		t.Errorf("unpriced, short offer = %+v", o)
	}
}

func TestVendorErrorMessages(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{`{"message":"no such instance"}`, "no such instance"},
		{`{"code":3,"msg":"余额不足"}`, "余额不足"},
		{`{"error":"bad"}`, "bad"},
		{`"instance is running"`, "instance is running"},
		{`plain text`, ""},
		{``, ""},
	}
	for _, tt := range tests {
		if got := vendorMessage([]byte(tt.body)); got != tt.want {
			t.Errorf("vendorMessage(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestHTTPRefusalKinds(t *testing.T) {
	tests := []struct {
		status int
		body   string
		kind   providers.ErrorKind
		text   string
	}{
		{400, `{"message":"余额不足"}`, providers.KindRejected, "余额不足"},
		{400, `{"message":"insufficient balance"}`, providers.KindRejected, "top up"},
		{402, `{}`, providers.KindRejected, "HTTP 402"},
		{400, `{"message":"displayName too long"}`, providers.KindInvalid, "displayName too long"},
		{409, `{"message":"instance is Creating"}`, providers.KindConflict, "instance is Creating"},
		{401, `{"message":"token expired"}`, providers.KindAuth, "token expired"},
		{403, `{"message":"forbidden"}`, providers.KindAuth, "DATENFAB_NAMESPACE"},
		{404, `{"message":"not found"}`, providers.KindNotFound, "list_instances"},
		{429, `{"message":"slow down"}`, providers.KindRateLimited, "slow down"},
		{503, `oops`, providers.KindUnknown, "may or may not"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			p := fakeVendor(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			wantKind(t, p.Stop(t.Context(), "instance-abc"), tt.kind, tt.text, "stop instance-abc")
		})
	}
}

func TestRegionNamesInEnglish(t *testing.T) {
	for zh, en := range map[string]string{
		"北京一区": "Beijing Zone 1", "上海二区": "Shanghai Zone 2", "乌兰察布十区": "Ulanqab Zone 10", "杭州3区": "Hangzhou Zone 3",
		"华东区": "East China Zone", "北京": "", "火星一区": "", "北京甲区": "", "": "",
	} {
		if got := regionInEnglish(zh); got != en {
			t.Errorf("%q -> %q, want %q", zh, got, en)
		}
	}
}

func TestKubeNamesAsTheRuleSays(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
	for _, s := range []string{"instance-4ca9", "host-cluster", "2", "", "-x", ".x", "a_b.c-d", "a/b", "../regions", "a b", "训练",
		strings.Repeat("a", 253), strings.Repeat("a", 254), "x\n"} {
		if got, want := kubeName(s), rule.MatchString(s); got != want {
			t.Errorf("kubeName(%q) = %v, the rule says %v", s, got, want)
		}
	}
}
