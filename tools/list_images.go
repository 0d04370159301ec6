package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// ListImagesArgs narrows the images listed.
type ListImagesArgs struct {
	Provider string `json:"provider,omitempty" jsonschema:"maxLength=64" jsonschema_description:"only this provider"`
	OfferID  string `json:"offer_id,omitempty" jsonschema:"maxLength=512" jsonschema_description:"only images usable with this offer (from list_gpu_offers); implies its provider"`
	Region   string `json:"region,omitempty" jsonschema:"maxLength=100" jsonschema_description:"only images in this region or zone"`
	Kind     string `json:"kind,omitempty" jsonschema:"enum=public,enum=private,enum=app" jsonschema_description:"public: the vendor's images; private: your saved images; app: application templates"`
	Name     string `json:"name,omitempty" jsonschema:"maxLength=100" jsonschema_description:"name or description substring, case-insensitive"`
	Limit    int    `json:"limit,omitempty" jsonschema:"minimum=0,maximum=500,default=50" jsonschema_description:"at most this many images (default 50)"`
}

// ListImagesResult is list_images' answer.
type ListImagesResult struct {
	Images  []providers.Image `json:"images"`
	Matched int               `json:"matched"`
	Errors  []ProviderError   `json:"errors,omitempty"`
	Demo    bool              `json:"demo,omitempty"`
}

func listImages(d *Deps) Tool {
	return newTool("list_images", "List images",
		"List images an instance can be launched from: the vendor's public images, your own saved images, and application templates. Give offer_id to see what fits an offer. Use an image's id as launch_instance's image_id.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *ListImagesArgs) (ListImagesResult, string, error) {
			var ps []providers.Provider
			q := providers.ImageQuery{Region: strings.TrimSpace(in.Region)}
			if in.OfferID != "" {
				p, err := d.resolve(in.OfferID, "offer_id")
				if err != nil {
					return ListImagesResult{}, "", err
				}
				if in.Provider != "" && !strings.EqualFold(in.Provider, p.Name()) {
					return ListImagesResult{}, "", argInvalid("offer_id", in.OfferID, fmt.Sprintf("offer_id %s belongs to %s, not %s", in.OfferID, p.Name(), in.Provider),
						"leave provider out, or pass an offer of "+in.Provider)
				}
				ps, q.OfferID = []providers.Provider{p}, in.OfferID
			} else {
				var err error
				if ps, err = d.selectProviders(in.Provider); err != nil {
					return ListImagesResult{}, "", err
				}
			}
			all, errs := fanOut(ctx, d, ps, func(ctx context.Context, p providers.Provider) ([]providers.Image, error) {
				return p.ListImages(ctx, q)
			})
			if err := allFailed(errs, len(ps)); err != nil {
				return ListImagesResult{}, "", err
			}
			name := strings.ToLower(in.Name)
			out := ListImagesResult{Images: []providers.Image{}, Errors: errs, Demo: d.Demo}
			var matched []providers.Image
			for _, im := range all {
				if in.Kind != "" && string(im.Kind) != in.Kind {
					continue
				}
				if name != "" && !strings.Contains(strings.ToLower(im.Name+" "+im.Description), name) {
					continue
				}
				matched = append(matched, im)
			}
			sort.SliceStable(matched, func(i, j int) bool {
				if matched[i].Provider != matched[j].Provider {
					return matched[i].Provider < matched[j].Provider
				}
				return kindRank(matched[i].Kind) < kindRank(matched[j].Kind)
			})
			out.Matched = len(matched)
			limit := in.Limit
			if limit == 0 {
				limit = 50
			}
			if len(matched) > limit {
				matched = matched[:limit]
			}
			out.Images = append(out.Images, matched...)
			return out, d.textPrefix() + imagesText(out), nil
		})
}

func kindRank(k providers.ImageKind) int {
	switch k {
	case providers.ImagePrivate:
		return 0
	case providers.ImagePublic:
		return 1
	}
	return 2
}

func imagesText(r ListImagesResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d images", r.Matched)
	if len(r.Images) < r.Matched {
		fmt.Fprintf(&b, " (showing %d)", len(r.Images))
	}
	rows := make([][]string, 0, len(r.Images))
	for _, im := range r.Images {
		desc := im.Description
		if len(desc) > 60 {
			desc = desc[:57] + "..."
		}
		rows = append(rows, []string{im.ID, im.Name, string(im.Kind), orDash(im.Region), orDash(im.Status), orDash(strings.ReplaceAll(desc, "\n", " "))})
	}
	if len(rows) > 0 {
		b.WriteString("\n")
		b.WriteString(table([]string{"image_id", "name", "kind", "region", "status", "description"}, rows))
	}
	b.WriteString(errorsText(r.Errors))
	return b.String()
}
