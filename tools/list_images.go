package tools

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// defaultImagePage is how many images an answer shows when no limit is given.
const defaultImagePage = 8

// ListImagesArgs narrows the images listed.
type ListImagesArgs struct {
	Provider string `json:"provider,omitempty" jsonschema:"maxLength=64" jsonschema_description:"only this provider"`
	OfferID  string `json:"offer_id,omitempty" jsonschema:"maxLength=512" jsonschema_description:"only images usable with this offer (from list_gpu_offers); implies its provider"`
	Region   string `json:"region,omitempty" jsonschema:"maxLength=100" jsonschema_description:"only images usable in this region or zone: a substring of its id or English name, case-insensitive"`
	Kind     string `json:"kind,omitempty" jsonschema:"enum=public,enum=private,enum=app" jsonschema_description:"public: the vendor's images; private: your saved images; app: application templates"`
	Name     string `json:"name,omitempty" jsonschema:"maxLength=100" jsonschema_description:"name or description substring, case-insensitive"`
	Limit    int    `json:"limit,omitempty" jsonschema:"minimum=0,maximum=500,default=8" jsonschema_description:"at most this many images (default 8)"`
	Offset   int    `json:"offset,omitempty" jsonschema:"minimum=0,maximum=100000" jsonschema_description:"skip this many matching images: the next_offset of the previous answer"`
}

// ListImagesResult is list_images' answer.
type ListImagesResult struct {
	Images     []providers.Image `json:"images"`
	Matched    int               `json:"matched" jsonschema_description:"on all pages"`
	NextOffset int               `json:"next_offset,omitempty" jsonschema_description:"more match: call again with this offset"`
	Hint       string            `json:"hint,omitempty" jsonschema_description:"no region matches: the regions there are"`
	Errors     []ProviderError   `json:"errors,omitempty"`
	Demo       bool              `json:"demo,omitempty"`
}

func listImages(d *Deps) Tool {
	return newTool("list_images", "List images",
		"List images an instance can be launched from: the vendor's public images, your own saved images, and application templates. Give offer_id to see what fits an offer. Sorted by provider, your own images first, then public ones, then apps; pages of 8 by default (limit, offset). Use an image's id as launch_instance's image_id.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *ListImagesArgs) (ListImagesResult, string, error) {
			var ps []providers.Provider
			q := providers.ImageQuery{}
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
			out := ListImagesResult{Images: []providers.Image{}, Demo: d.Demo}
			var regions map[string][]string
			if region := lowerASCII(strings.TrimSpace(in.Region)); region != "" {
				var known []regionRef
				regions, known = d.matchRegions(ctx, ps, region)
				if len(regions) == 0 {
					out.Hint = fmt.Sprintf("no region matches %q; %s", in.Region, regionsList(known))
					return out, d.textPrefix() + "0 images. " + upperFirst(out.Hint) + ".", nil
				}
			}
			all, errs := fanOut(ctx, d, ps, func(ctx context.Context, p providers.Provider) ([]providers.Image, error) {
				ids, narrowed := regions[p.Name()]
				if !narrowed {
					return p.ListImages(ctx, q)
				}
				// One listing per matching region; images without a region run in any.
				var imgs []providers.Image
				var cut error
				for _, id := range ids {
					rq := q
					rq.Region = id
					part, err := p.ListImages(ctx, rq)
					if err != nil && providers.AsIncomplete(err) == nil {
						return nil, err
					}
					cut = cmp.Or(cut, err)
					for _, im := range part {
						if !slices.ContainsFunc(imgs, func(x providers.Image) bool { return x.ID == im.ID }) {
							imgs = append(imgs, im)
						}
					}
				}
				return imgs, cut
			})
			if err := allFailed(errs, len(ps)); err != nil {
				return ListImagesResult{}, "", err
			}
			out.Errors = errs
			name := lowerASCII(in.Name)
			var matched []providers.Image
			for _, im := range all {
				if in.Kind != "" && string(im.Kind) != in.Kind {
					continue
				}
				if name != "" && !containsFold(im.Name, name) && !containsFold(im.Description, name) {
					continue
				}
				if ids, narrowed := regions[im.Provider]; narrowed && im.Region != "" && !slices.Contains(ids, im.Region) {
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
			page := pageOf(matched, in.Offset, cmp.Or(in.Limit, defaultImagePage))
			out.Images = append(out.Images, page...)
			if end := in.Offset + len(page); end < len(matched) {
				out.NextOffset = end
			}
			return out, d.textPrefix() + imagesText(out, in.Offset), nil
		})
}

// regionRef is one region of a provider.
type regionRef struct {
	provider, id, name string
}

// matchRegions finds, per provider, the region ids whose id or English name contains region
// (lower case), from the providers' offers (the cache's when there is one). A provider whose
// offers name no region at all (Chenyu has none) is left out of the map, so nothing narrows
// it; one with regions of which none matches maps to no id. It also returns every region
// found, for a hint. A provider whose offers cannot be read is left out too: its listing then
// says what went wrong.
func (d *Deps) matchRegions(ctx context.Context, ps []providers.Provider, region string) (map[string][]string, []regionRef) {
	parts, _ := fanOutEach(ctx, d, ps, func(ctx context.Context, p providers.Provider) ([]providers.Offer, error) {
		if d.Offers != nil {
			offers, _, err := d.Offers.Offers(ctx, p)
			return offers, err
		}
		return p.ListOffers(ctx)
	})
	matched := map[string][]string{}
	var known []regionRef
	found := false
	for _, part := range parts {
		for _, o := range part {
			if o.Region == "" {
				continue
			}
			if _, seen := matched[o.Provider]; !seen {
				matched[o.Provider] = []string{}
			}
			r := regionRef{o.Provider, o.Region, o.RegionName}
			if slices.Contains(known, r) {
				continue
			}
			known = append(known, r)
			if containsFold(o.Region, region) || containsFold(o.RegionName, region) {
				matched[o.Provider] = append(matched[o.Provider], o.Region)
				found = true
			}
		}
	}
	if !found {
		return nil, known
	}
	return matched, known
}

// regionsList names the regions there are, by provider.
func regionsList(known []regionRef) string {
	if len(known) == 0 {
		return "no provider names a region"
	}
	by := map[string][]string{}
	var names []string
	for _, r := range known {
		if by[r.provider] == nil {
			names = append(names, r.provider)
		}
		by[r.provider] = append(by[r.provider], regionLabel(r.id, r.name))
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, p := range names {
		sort.Strings(by[p])
		parts[i] = p + ": " + strings.Join(by[p], ", ")
	}
	return "the regions are " + strings.Join(parts, "; ")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
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

func imagesText(r ListImagesResult, offset int) string {
	var b strings.Builder
	b.WriteString(count(r.Matched, "image"))
	if len(r.Images) < r.Matched {
		fmt.Fprintf(&b, " (showing %d-%d)", offset+1, offset+len(r.Images))
	}
	if len(r.Images) > 0 {
		t := newTextTable("image_id", "name", "kind", "region", "description")
		t.grow(len(r.Images))
		for _, im := range r.Images {
			desc := strings.ReplaceAll(im.Description, "\n", " ")
			if im.Status != "" {
				desc = strings.TrimSuffix(im.Status+"; "+desc, "; ")
			}
			if im.CreatedAt != nil && im.Kind == providers.ImagePrivate {
				desc = strings.TrimSuffix("created "+timeCell(im.CreatedAt)+"; "+desc, "; ")
			}
			t.row(im.ID, im.Name, string(im.Kind), regionCell(im.Region, im.RegionName), orDash(truncate(desc, 48)))
		}
		b.WriteString("\n")
		t.write(&b)
	}
	if r.NextOffset > 0 {
		fmt.Fprintf(&b, "\nMore: call again with offset=%d (or a larger limit, up to 500).", r.NextOffset)
	}
	b.WriteString(errorsText(r.Errors))
	return b.String()
}

// truncate cuts s to at most n characters, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	k := 0
	for i := range s {
		if k == n-3 {
			return s[:i] + "..."
		}
		k++
	}
	return s
}
