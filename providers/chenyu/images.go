package chenyu

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// podPrefix marks an image id that names an app-market Pod ("pod:<uuid>[@<tag>]").
const podPrefix = "pod:"

// ListImages implements providers.Provider: market images (public), the account's private
// images and app-market Pods. Every image runs on every GPU model and Chenyu has no regions,
// so the query narrows nothing.
func (p *Provider) ListImages(ctx context.Context, q providers.ImageQuery) ([]providers.Image, error) {
	// A list cut short still gives its part; the answer carries the first such list's error.
	var cut error
	keep := func(err error) error {
		if providers.AsIncomplete(err) != nil {
			cut = cmp.Or(cut, err)
			return nil
		}
		return err
	}
	market, err := fetchAll(ctx, p, p.public, "/image/market/list", "image_list", "list market images", nil,
		func(m wireMarketImage) string { return m.UUID })
	if err := keep(err); err != nil {
		return nil, err
	}
	private, err := fetchAll(ctx, p, p.http, "/image/private/list", "image_list", "list private images", nil,
		func(m wirePrivateImage) string { return m.UUID })
	if err := keep(err); err != nil {
		return nil, err
	}
	pods, err := fetchAll(ctx, p, p.http, "/pod/list", "pod_list", "list pods", nil, func(m wirePod) string { return m.UUID })
	if err := keep(err); err != nil {
		return nil, err
	}
	var out []providers.Image
	for _, m := range market {
		if strings.TrimSpace(m.UUID) != "" {
			out = append(out, marketImage(m))
		}
	}
	for _, m := range private {
		if strings.TrimSpace(m.UUID) != "" {
			out = append(out, p.privateImage(m))
		}
	}
	for _, m := range pods {
		if strings.TrimSpace(m.UUID) != "" {
			out = append(out, podImages(m)...)
		}
	}
	return out, cut
}

// componentOrder puts frameworks first, then the stack below them.
var componentOrder = []string{"PyTorch", "TensorFlow", "PaddlePaddle", "CUDA", "Python", "Ubuntu"}

// marketName builds a market image's name from its components, e.g.
// "PyTorch 2.1 / CUDA 11.8 / Python 3.10 / Ubuntu 22.04"; components the adapter does not
// know follow in alphabetical order.
func marketName(c map[string]string) string {
	var parts []string
	known := map[string]bool{}
	for _, k := range componentOrder {
		known[k] = true
		if v := strings.TrimSpace(c[k]); v != "" {
			parts = append(parts, k+" "+v)
		}
	}
	var rest []string
	for k, v := range c {
		if !known[k] && strings.TrimSpace(v) != "" {
			rest = append(rest, k+" "+strings.TrimSpace(v))
		}
	}
	sort.Strings(rest)
	return strings.Join(append(parts, rest...), " / ")
}

func marketImage(m wireMarketImage) providers.Image {
	c := make(map[string]string, len(m.Components))
	for k, v := range m.Components {
		c[k] = string(v)
	}
	name := marketName(c)
	if name == "" {
		name = m.UUID
	}
	return providers.Image{
		ID: m.UUID, Provider: Name, Name: name, Kind: providers.ImagePublic,
		Description: "Chenyu market base image",
		// The market list gives bytes (quirk 5.3.14).
		SizeGB:    roundGB(float64(m.Size) / (1 << 30)),
		CreatedAt: unixTime(int64(m.CreatedAt)),
	}
}

// saveStatus names a save_image_status: 1 uploading, 2 saved, 3 failed.
var saveStatus = map[int64]string{1: "saving", 2: "saved", 3: "failed"}

// imageStatus is the same status in Image.Status's words.
var imageStatus = map[int64]string{1: "saving", 2: "ready", 3: "failed"}

func (p *Provider) privateImage(m wirePrivateImage) providers.Image {
	name := strings.TrimSpace(string(m.Title))
	if name == "" {
		name = m.UUID
	}
	desc := strings.TrimSpace(string(m.Remark))
	if m.PodUUID != "" {
		from := "saved from Pod " + string(m.PodUUID)
		if m.PodTag != "" {
			from += "@" + string(m.PodTag)
		}
		desc = joinNonEmpty(desc, from)
	}
	st, known := imageStatus[int64(m.SaveImageStatus)]
	if !known && m.SaveImageStatus != 0 {
		p.log.Debug().Int64("save_image_status", int64(m.SaveImageStatus)).Msg("chenyu private image with an undocumented save status")
	}
	return providers.Image{
		ID: m.UUID, Provider: Name, Name: name, Kind: providers.ImagePrivate,
		Description: desc,
		// The private list's example prints GB (12.5), unlike the market list (quirk 5.3.14).
		SizeGB:    roundGB(float64(m.Size)),
		Status:    st,
		CreatedAt: unixTime(int64(m.CreateTime)),
	}
}

// podImages lists a Pod as "pod:<uuid>" (Chenyu picks the latest version) and one image per
// version tag.
func podImages(m wirePod) []providers.Image {
	title := strings.TrimSpace(string(m.Title))
	if title == "" {
		title = m.UUID
	}
	desc := strings.TrimSpace(string(m.Remark))
	if m.Price != nil {
		if h := priceOf(m.Price.Hour); h != nil {
			desc = joinNonEmpty(desc, fmt.Sprintf("Pod list price %.2f CNY/hour (Chenyu does not say whether it adds to the GPU price)", *h))
		}
	}
	out := []providers.Image{{
		ID: podPrefix + m.UUID, Provider: Name, Name: title + " (latest)", Kind: providers.ImageApp,
		Description: desc,
	}}
	for _, t := range m.PodTag {
		tag := strings.TrimSpace(string(t))
		if tag == "" {
			continue
		}
		out = append(out, providers.Image{
			ID: podPrefix + m.UUID + "@" + tag, Provider: Name, Name: title + " " + tag, Kind: providers.ImageApp,
			Description: desc,
		})
	}
	return out
}

// parsePodID splits "pod:<uuid>[@<tag>]"; ok is false for other ids.
func parsePodID(id string) (uuid, tag string, ok bool) {
	rest, found := strings.CutPrefix(id, podPrefix)
	if !found {
		return "", "", false
	}
	uuid, tag, _ = strings.Cut(rest, "@")
	return uuid, tag, true
}

func roundGB(gb float64) float64 {
	if gb <= 0 {
		return 0
	}
	return math.Round(gb*10) / 10
}

// joinNonEmpty joins the non-empty parts with "; ".
func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
