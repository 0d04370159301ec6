package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

// Each test runs the gpu-mcp binary against one vendor's emulator, started here so that the
// test can read the emulator's state after every step, and takes an instance through its life
// over stdio, every guarded step through plan and token.

func instanceIDs(m map[string]any) []string {
	var ids []string
	for _, in := range m["instances"].([]any) {
		ids = append(ids, in.(map[string]any)["id"].(string))
	}
	return ids
}

func TestStdioHuiXingYunLifecycle(t *testing.T) {
	emu := hxytest.NewServer(hxytest.Options{})
	defer emu.Close()
	s := startSession(t, []string{"HUIXINGYUN_TOKEN=" + emu.Credential(), "HUIXINGYUN_BASE_URL=" + emu.URL()})
	reads := map[string]bool{"/gpu/product/list": true, "/gpu/application/list": true, "/gpu/images/list": true, "/gpu/images/mine": true, "/gpu/instances/list": true}
	mutations := func() int {
		n := 0
		for _, r := range emu.Requests() {
			if !reads[r.Path] {
				n++
			}
		}
		return n
	}

	offer := firstID(t, s.ok("list_gpu_offers", map[string]any{"gpu": "4090", "min_gpus": 2, "available_only": true}), "offers")
	image := firstID(t, s.ok("list_images", map[string]any{"offer_id": offer, "kind": "public"}), "images")

	m := s.confirm("launch_instance", map[string]any{"offer_id": offer, "image_id": image, "gpu_count": 2, "name": "e2e"}, mutations)
	id, _ := m["instance_id"].(string)
	if !strings.HasPrefix(id, "huixingyun:") || m["order_id"] == "" {
		t.Fatalf("launch result: %v", m)
	}
	gid := local(id)
	rec, ok := emu.Instance(gid)
	if !ok || rec.Status != hxytest.StatusRunning || rec.GPUCount != 2 || rec.PayMethod != hxytest.PayHour || rec.GPUType != local(offer) {
		t.Fatalf("emulator after launch: %+v", rec)
	}
	if !slices.Contains(instanceIDs(s.ok("list_instances", map[string]any{"provider": "huixingyun"})), id) {
		t.Fatal("list_instances does not show the new instance")
	}
	conn := s.ok("get_instance", map[string]any{"instance_id": id})["instance"].(map[string]any)["connection"].(map[string]any)
	if conn["ssh_host"] != rec.IP || conn["ssh_password"] != rec.Password || !strings.Contains(conn["ssh_command"].(string), rec.IP) {
		t.Fatalf("connection %v, emulator %+v", conn, rec)
	}

	s.confirm("stop_instance", map[string]any{"instance_id": id}, mutations)
	if rec, _ := emu.Instance(gid); rec.Status != hxytest.StatusStopped {
		t.Fatalf("after stop: %s", rec.Status)
	}
	s.confirm("start_instance", map[string]any{"instance_id": id}, mutations)
	if rec, _ := emu.Instance(gid); rec.Status != hxytest.StatusRunning {
		t.Fatalf("after start: %s", rec.Status)
	}
	s.confirm("save_image", map[string]any{"instance_id": id, "image_name": "e2e-ckpt"}, mutations)
	if !slices.ContainsFunc(emu.Images(), func(im hxytest.Image) bool { return im.Name == "e2e-ckpt" && im.SourceGID == gid }) {
		t.Fatalf("no saved image: %+v", emu.Images())
	}
	s.fails("destroy_instance", map[string]any{"instance_id": id}, "stopped")
	s.confirm("stop_instance", map[string]any{"instance_id": id}, mutations)
	s.confirm("destroy_instance", map[string]any{"instance_id": id}, mutations)
	if _, ok := emu.Instance(gid); ok {
		t.Fatal("destroyed instance still exists")
	}

	// A monthly instance can be renewed, and cannot be destroyed.
	m = s.confirm("launch_instance", map[string]any{"offer_id": offer, "image_id": image, "billing": "monthly"}, mutations)
	monthly := m["instance_id"].(string)
	before, _ := emu.Instance(local(monthly))
	if before.PayMethod != hxytest.PayMonth || before.ExpireAt.IsZero() {
		t.Fatalf("monthly launch: %+v", before)
	}
	s.fails("renew_instance", map[string]any{"instance_id": monthly, "periods": 2}, "1, 3, 12")
	s.confirm("renew_instance", map[string]any{"instance_id": monthly, "periods": 3}, mutations)
	after, _ := emu.Instance(local(monthly))
	if got := after.ExpireAt.Sub(before.ExpireAt); got < 85*24*time.Hour || got > 95*24*time.Hour {
		t.Fatalf("renew by 3 months moved the expiry by %s", got)
	}
	s.fails("destroy_instance", map[string]any{"instance_id": monthly}, "hourly")
	s.noSecretsIn(emu.Credential(), rec.Password)
}

func TestStdioDatenfabLifecycle(t *testing.T) {
	emu := dftest.NewServer(dftest.Options{})
	defer emu.Close()
	s := startSession(t, []string{"DATENFAB_TOKEN=" + emu.Credential(), "DATENFAB_NAMESPACE=" + emu.Namespace(), "DATENFAB_BASE_URL=" + emu.URL()})
	mutations := func() int {
		n := 0
		for _, r := range emu.Requests() {
			if r.Method != http.MethodGet {
				n++
			}
		}
		return n
	}
	offers := s.ok("list_gpu_offers", map[string]any{"provider": "datenfab", "billing": "hourly", "available_only": true})
	offer := firstID(t, offers, "offers")
	image := firstID(t, s.ok("list_images", map[string]any{"provider": "datenfab", "kind": "public"}), "images")

	m := s.confirm("launch_instance", map[string]any{"offer_id": offer, "image_id": image, "name": "e2e-df"}, mutations)
	id := m["instance_id"].(string)
	name := local(id)
	if rec, ok := emu.Instance(name); !ok || rec.Status != "Running" || rec.DisplayName != "e2e-df" || rec.Cost.CostType != "1" {
		t.Fatalf("emulator after launch: %+v", rec)
	}
	if !slices.Contains(instanceIDs(s.ok("list_instances", nil)), id) {
		t.Fatal("list_instances does not show the new instance")
	}
	inst := s.ok("get_instance", map[string]any{"instance_id": id})["instance"].(map[string]any)
	conn := inst["connection"].(map[string]any)
	if conn["ssh_user"] != "root" || conn["ssh_port"].(float64) <= 0 || conn["ssh_host"] != "127.0.0.1" || conn["ssh_password"] == "" {
		t.Fatalf("parsed SSH details: %v", conn)
	}
	if len(conn["web_urls"].([]any)) == 0 {
		t.Errorf("no Jupyter/Tensorboard URLs: %v", conn)
	}

	s.confirm("stop_instance", map[string]any{"instance_id": id}, mutations)
	if rec, _ := emu.Instance(name); rec.Status != "Shutdown" {
		t.Fatalf("after stop: %s", rec.Status)
	}
	s.confirm("start_instance", map[string]any{"instance_id": id}, mutations)
	if rec, _ := emu.Instance(name); rec.Status != "Running" {
		t.Fatalf("after start: %s", rec.Status)
	}
	m = s.ok("save_image", map[string]any{"instance_id": id, "image_name": "e2e-snap:v1"})
	if !strings.Contains(strings.Join(toStrings(m["plan"].(map[string]any)["effects"]), " "), "stop") {
		t.Fatalf("the save_image plan does not say it stops the instance: %v", m["plan"])
	}
	s.confirm("save_image", map[string]any{"instance_id": id, "image_name": "e2e-snap:v1"}, mutations)
	rec, _ := emu.Instance(name)
	if rec.Status != "Shutdown" || len(rec.SavedImages) != 1 || !strings.Contains(rec.SavedImages[0], "e2e-snap:v1") {
		t.Fatalf("after save_image: %+v", rec)
	}
	s.fails("renew_instance", map[string]any{"instance_id": id, "periods": 1}, "unsupported by datenfab")
	s.fails("restart_instance", map[string]any{"instance_id": id}, "unsupported by datenfab")
	s.confirm("destroy_instance", map[string]any{"instance_id": id}, mutations)
	if _, ok := emu.Instance(name); ok {
		t.Fatal("destroyed instance still exists")
	}
	s.noSecretsIn(emu.Credential())
}

func TestStdioChenyuLifecycle(t *testing.T) {
	emu := cytest.NewServer(cytest.Options{MaxPageSize: 2})
	defer emu.Close()
	s := startSession(t, []string{"CHENYU_API_KEY=" + emu.Credential(), "CHENYU_BASE_URL=" + emu.URL()})
	mutations := func() int {
		n := 0
		for _, r := range emu.Requests() {
			if r.Method == http.MethodPost {
				n++
			}
		}
		return n
	}
	offer := firstID(t, s.ok("list_gpu_offers", map[string]any{"provider": "chenyu", "gpu": "4090"}), "offers")
	image := firstID(t, s.ok("list_images", map[string]any{"provider": "chenyu", "kind": "public"}), "images")
	pod := firstID(t, s.ok("list_images", map[string]any{"provider": "chenyu", "kind": "app"}), "images")
	if !strings.HasPrefix(pod, "chenyu:pod:") {
		t.Fatalf("pod image id %s", pod)
	}

	byImage := s.confirm("launch_instance", map[string]any{"offer_id": offer, "image_id": image, "gpu_count": 2, "name": "by-image"}, mutations)["instance_id"].(string)
	byPod := s.confirm("launch_instance", map[string]any{"offer_id": offer, "image_id": pod}, mutations)["instance_id"].(string)
	for _, id := range []string{byImage, byPod} {
		if rec, ok := emu.Instance(local(id)); !ok || rec.Status != 2 {
			t.Fatalf("emulator after launch of %s: %+v", id, rec)
		}
	}
	if rec, _ := emu.Instance(local(byImage)); rec.GPUNums != 2 || rec.Title != "by-image" {
		t.Fatalf("launch by image: %+v", rec)
	}
	if rec, _ := emu.Instance(local(byPod)); rec.ImageUUID != strings.TrimPrefix(strings.SplitN(local(pod), "@", 2)[0], "pod:") {
		t.Fatalf("launch by pod used %q, want the pod of %s", rec.ImageUUID, pod)
	}
	// The emulator serves two instances a page: with its sample instance there are three, so
	// the list needs two pages.
	ids := instanceIDs(s.ok("list_instances", map[string]any{"provider": "chenyu"}))
	if len(ids) != len(emu.InstanceIDs()) || !slices.Contains(ids, byImage) || !slices.Contains(ids, byPod) {
		t.Fatalf("list_instances %v, emulator has %v", ids, emu.InstanceIDs())
	}
	pages := 0
	for _, r := range emu.Requests() {
		if r.Path == cytest.PathPrefix+"/instance/list" || r.Path == "/instance/list" {
			pages++
		}
	}
	if pages < 2 {
		t.Fatalf("list_instances read %d pages, want at least 2", pages)
	}
	conn := s.ok("get_instance", map[string]any{"instance_id": byImage})["instance"].(map[string]any)["connection"].(map[string]any)
	if conn["ssh_host"] == "" || conn["ssh_port"].(float64) <= 0 || conn["ssh_password"] == "" || !strings.HasPrefix(conn["ssh_command"].(string), "ssh ") {
		t.Fatalf("SSH details: %v", conn)
	}

	s.confirm("stop_instance", map[string]any{"instance_id": byImage}, mutations)
	if rec, _ := emu.Instance(local(byImage)); rec.Status != 22 {
		t.Fatalf("after stop: %d", rec.Status)
	}
	s.confirm("start_instance", map[string]any{"instance_id": byImage}, mutations)
	if rec, _ := emu.Instance(local(byImage)); rec.Status != 2 {
		t.Fatalf("after start: %d", rec.Status)
	}
	s.confirm("restart_instance", map[string]any{"instance_id": byImage}, mutations)
	if rec, _ := emu.Instance(local(byImage)); rec.Status != 2 {
		t.Fatalf("after restart: %d", rec.Status)
	}
	m := s.confirm("save_image", map[string]any{"instance_id": byImage, "image_name": "e2e-cy"}, mutations)
	if !strings.Contains(strings.Join(toStrings(m["plan"].(map[string]any)["effects"]), " "), "stop") {
		t.Fatalf("the save_image plan does not say it stops the instance: %v", m["plan"])
	}
	rec, _ := emu.Instance(local(byImage))
	if rec.Status != 22 || rec.SaveImageStatus != 2 || !slices.ContainsFunc(emu.PrivateImages(), func(p cytest.PrivateImage) bool { return p.Title == "e2e-cy" }) {
		t.Fatalf("after save_image: %+v, images %+v", rec, emu.PrivateImages())
	}
	s.fails("renew_instance", map[string]any{"instance_id": byImage, "periods": 1}, "unsupported by chenyu")
	s.fails("destroy_instance", map[string]any{"instance_id": byPod}, "stop")
	s.confirm("destroy_instance", map[string]any{"instance_id": byImage}, mutations)
	if _, ok := emu.Instance(local(byImage)); ok {
		t.Fatal("destroyed instance still exists")
	}
	s.noSecretsIn(emu.Credential())
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
