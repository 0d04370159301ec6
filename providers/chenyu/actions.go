package chenyu

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Launch implements providers.Provider. An image id "pod:<uuid>[@<tag>]" is created with
// POST /instance/create_by_pod, any other with POST /instance/create_by_image. Neither takes a
// name, so a LaunchSpec.Name is set afterwards with /instance/update_title; if that fails the
// created instance is still returned, and the failure is logged. The intro page's undocumented
// auto_start parameter (quirk 5.3.9) is not sent.
func (p *Provider) Launch(ctx context.Context, spec providers.LaunchSpec) (providers.LaunchResult, error) {
	offer, image := strings.TrimSpace(spec.OfferID), strings.TrimSpace(spec.ImageID)
	op := fmt.Sprintf("launch %d x %s", spec.GPUCount, offer)
	if spec.Billing != "" && spec.Billing != providers.BillingHourly {
		return providers.LaunchResult{}, errf(providers.KindInvalid, op, "launch with billing hourly",
			"chenyu bills by the hour only: its API has no billing choice at create, so %s billing cannot be bought", spec.Billing)
	}
	if !validGPUCount(spec.GPUCount) {
		return providers.LaunchResult{}, errf(providers.KindInvalid, op, "use a gpu_count of 1, 2, 4 or 8",
			"chenyu accepts gpu_nums 1, 2, 4 or 8 only, not %d", spec.GPUCount)
	}
	if offer == "" {
		return providers.LaunchResult{}, errf(providers.KindInvalid, op, "use an offer id from list_gpu_offers (chenyu:gpu_...)", "no offer given")
	}
	var path string
	var body any
	if pod, tag, isPod := parsePodID(image); isPod {
		if pod == "" {
			return providers.LaunchResult{}, errf(providers.KindInvalid, op, "use an app image id from list_images (chenyu:pod:<uuid> or chenyu:pod:<uuid>@<tag>)",
				"malformed Pod image id %q", image)
		}
		path, body = "/instance/create_by_pod", createByPodBody{PodUUID: pod, PodTag: tag, GPUUUID: offer, GPUNums: spec.GPUCount}
	} else {
		if image == "" {
			return providers.LaunchResult{}, errf(providers.KindInvalid, op, "use an image id from list_images", "no image given")
		}
		path, body = "/instance/create_by_image", createByImageBody{ImageUUID: image, GPUUUID: offer, GPUNums: spec.GPUCount}
	}
	data, err := p.post(ctx, path, body, op)
	if err != nil {
		return providers.LaunchResult{}, err
	}
	var w wireInstance
	if len(data) == 0 || json.Unmarshal(data, &w) != nil || strings.TrimSpace(w.InstanceUUID) == "" {
		return providers.LaunchResult{}, errf(providers.KindUnknown, op,
			"check list_instances for a new instance before launching again",
			"chenyu accepted the launch but its answer names no instance")
	}
	inst := p.instance(w, nil)
	p.log.Info().Str("instance", w.InstanceUUID).Str("gpu", offer).Int("gpus", spec.GPUCount).Msg("chenyu instance created")
	if name := strings.TrimSpace(spec.Name); name != "" && name != inst.Name {
		if err := p.setTitle(ctx, w.InstanceUUID, name); err != nil {
			p.log.Warn().Str("instance", w.InstanceUUID).Str("error", err.Error()).
				Msg("chenyu instance created, but naming it failed; it keeps Chenyu's default title")
		} else {
			inst.Name = name
		}
	}
	return providers.LaunchResult{InstanceID: w.InstanceUUID, Instance: &inst}, nil
}

func (p *Provider) setTitle(ctx context.Context, id, title string) error {
	_, err := p.post(ctx, "/instance/update_title", updateTitleBody{InstanceUUID: id, Title: title}, "rename "+id)
	return err
}

// action sends a POST that takes only instance_uuid.
func (p *Provider) action(ctx context.Context, path, verb, id string) error {
	op := verb + " " + id
	if err := checkID(op, id); err != nil {
		return err
	}
	_, err := p.post(ctx, path, instanceBody{InstanceUUID: id}, op)
	return err
}

// Start implements providers.Provider: POST /instance/startup with the GPU model and count
// the instance was created with.
func (p *Provider) Start(ctx context.Context, id string) error {
	return p.StartWith(ctx, id, "", 0)
}

// StartWith starts a stopped instance on another GPU model (gpuUUID, an offer's local id)
// and/or GPU count (1, 2, 4 or 8); "" and 0 keep the instance's own.
func (p *Provider) StartWith(ctx context.Context, id, gpuUUID string, gpuNums int) error {
	op := "start " + id
	if err := checkID(op, id); err != nil {
		return err
	}
	if gpuNums != 0 && !validGPUCount(gpuNums) {
		return errf(providers.KindInvalid, op, "use a GPU count of 1, 2, 4 or 8", "chenyu accepts gpu_nums 1, 2, 4 or 8 only, not %d", gpuNums)
	}
	_, err := p.post(ctx, "/instance/startup", startupBody{InstanceUUID: id, GPUUUID: strings.TrimSpace(gpuUUID), GPUNums: gpuNums}, op)
	return err
}

// Stop implements providers.Provider: POST /instance/shutdown (the disk is kept).
func (p *Provider) Stop(ctx context.Context, id string) error {
	return p.action(ctx, "/instance/shutdown", "stop", id)
}

// Restart implements providers.Provider: POST /instance/restart.
func (p *Provider) Restart(ctx context.Context, id string) error {
	return p.action(ctx, "/instance/restart", "restart", id)
}

// Destroy implements providers.Provider: POST /instance/destroy, irreversible.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	return p.action(ctx, "/instance/destroy", "destroy", id)
}

// SaveImage implements providers.Provider: POST /instance/save_image. The documented body has
// instance_uuid only; the official example also sends image_name and remark (quirk 5.3.7), and
// so does this adapter, since names must be unique. Chenyu shuts the instance down once the
// image is saved. The new image's uuid is looked up in the private list by name; when it is
// not found (yet), "" is returned.
func (p *Provider) SaveImage(ctx context.Context, id, name string) (string, error) {
	op := "save image of " + id
	if err := checkID(op, id); err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", errf(providers.KindInvalid, op, "give the image a name", "no image name given")
	}
	body := saveImageBody{InstanceUUID: id, ImageName: name, Remark: "saved by gpu-mcp from instance " + id}
	if _, err := p.post(ctx, "/instance/save_image", body, op); err != nil {
		return "", err
	}
	images, err := fetchAll(ctx, p, p.http, "/image/private/list", "image_list", "list private images", nil,
		func(m wirePrivateImage) string { return m.UUID })
	if err != nil && providers.AsIncomplete(err) == nil {
		p.log.Debug().Str("error", err.Error()).Msg("chenyu image save requested; its id could not be read back")
		return "", nil
	}
	found := ""
	var newest int64 = -1
	for _, m := range images {
		if strings.TrimSpace(string(m.Title)) == name && int64(m.CreateTime) > newest {
			found, newest = m.UUID, int64(m.CreateTime)
		}
	}
	return found, nil
}

// minStopLead is how far ahead a scheduled stop must be, per the shutdown_timer page.
const minStopLead = 5 * time.Minute

// ScheduleStop implements providers.StopScheduler with POST /instance/shutdown_timer.
// shutdown_time is sent as an absolute Unix timestamp in seconds, as the field is documented;
// the page's example (60) and notes ("minutes") disagree (quirk 5.3.6) and are not followed.
// A zero time cancels with enable false and shutdown_time 0. Chenyu takes a timer on a running
// instance only, so setting one is checked against the instance's state first.
func (p *Provider) ScheduleStop(ctx context.Context, id string, at time.Time) error {
	op := "schedule stop of " + id
	if err := checkID(op, id); err != nil {
		return err
	}
	if at.IsZero() {
		_, err := p.post(ctx, "/instance/shutdown_timer", shutdownTimerBody{InstanceUUID: id, Enable: false, ShutdownTime: 0}, "cancel scheduled stop of "+id)
		return err
	}
	if earliest := p.now().Add(minStopLead); at.Before(earliest) {
		return errf(providers.KindInvalid, op, "choose a time at least 5 minutes from now",
			"chenyu needs a scheduled stop at least 5 minutes ahead; %s is too soon", at.UTC().Format(time.RFC3339))
	}
	inst, err := p.GetInstance(ctx, id)
	if err != nil {
		return err
	}
	if inst.State != providers.StateRunning {
		return errf(providers.KindConflict, op, "start the instance and wait until it is running",
			"chenyu schedules a stop only on a running instance; %s is %s (chenyu status %s)", id, inst.State, inst.RawState)
	}
	_, err = p.post(ctx, "/instance/shutdown_timer", shutdownTimerBody{InstanceUUID: id, Enable: true, ShutdownTime: at.Unix()}, op)
	return err
}

// Balance implements providers.BalanceReporter with GET /balance/info.
func (p *Provider) Balance(ctx context.Context) (providers.Balance, error) {
	var b wireBalance
	if err := p.get(ctx, "/balance/info", nil, "read balance", &b); err != nil {
		return providers.Balance{}, err
	}
	return providers.Balance{CNY: float64(b.Balance), CreditCNY: float64(b.CardBalance)}, nil
}
