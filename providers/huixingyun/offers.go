package huixingyun

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/httpx"
)

// maxGPUsPerInstance caps GPUCounts: gpu_remain counts what one order may take, and no
// HuiXingYun host has more than 8 GPUs.
const maxGPUsPerInstance = 8

// cst is the +08:00 zone of every HuiXingYun timestamp.
var cst = time.FixedZone("CST", 8*3600)

func (p *Provider) products(ctx context.Context) ([]product, error) {
	var out productList
	if err := p.call(ctx, httpx.Request{Path: "/gpu/product/list", Op: "list products"}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

func (p *Provider) apps(ctx context.Context) ([]app, error) {
	var out appList
	if err := p.call(ctx, httpx.Request{Path: "/gpu/application/list", Op: "list apps"}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

func (p *Provider) publicImages(ctx context.Context, gpuType string) ([]image, error) {
	var out imageList
	r := httpx.Request{Path: "/gpu/images/list", Body: gpuTypeRequest{GPUType: gpuType}, Op: "list public images of " + gpuType}
	if err := p.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

func (p *Provider) ownImages(ctx context.Context, room string) ([]image, error) {
	var out imageList
	r := httpx.Request{Path: "/gpu/images/mine", Body: roomRequest{RoomName: room}, Op: "list own images in zone " + room}
	if err := p.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// ListOffers lists the GPU products. The API has no price, so PricePerGPUHour stays nil.
func (p *Provider) ListOffers(ctx context.Context) ([]providers.Offer, error) {
	items, err := p.products(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]providers.Offer, 0, len(items))
	for _, it := range items {
		if it.GPUType == "" {
			continue
		}
		out = append(out, offerOf(it))
	}
	return out, nil
}

func offerOf(it product) providers.Offer {
	remain := int(it.GPURemain)
	if remain < 0 {
		remain = 0
	}
	counts := []int{}
	for n := 1; n <= remain && n <= maxGPUsPerInstance; n++ {
		counts = append(counts, n)
	}
	notes := []string{"no price in HuiXingYun's API"}
	if it.DiskCap > 0 {
		notes = append(notes, fmt.Sprintf("data disk expandable up to %d GB", it.DiskCap))
	}
	return providers.Offer{
		ID:            string(it.GPUType),
		Provider:      Name,
		GPUModel:      string(it.Name),
		GPUCounts:     counts,
		VRAMGB:        int(it.GPURAM),
		VCPUs:         int(it.CPU),
		RAMGB:         int(it.Memory),
		SystemDiskGB:  int(it.DiskOne),
		DataDiskGB:    int(it.DiskDataOne),
		Region:        string(it.RoomName),
		RegionName:    zoneName(string(it.RoomName)),
		Billing:       []providers.BillingMode{providers.BillingHourly, providers.BillingDaily, providers.BillingMonthly},
		Available:     remain > 0,
		AvailableGPUs: &remain,
		Notes:         strings.Join(notes, "; "),
	}
}

// ListImages lists public images (per product), own images (per zone) and one-click apps:
//   - OfferID (a gpu_type): that product's public images, the own images of its zone, and
//     the apps that can run there;
//   - Region only: the own images of that zone and the public images of every product in it;
//   - neither: the public images of every product and the own images of every zone.
//
// Images are deduplicated by image_id, since products share public images.
func (p *Provider) ListImages(ctx context.Context, q providers.ImageQuery) ([]providers.Image, error) {
	items, err := p.products(ctx)
	if err != nil {
		return nil, err
	}
	var gpuTypes, rooms []string
	addRoom := func(r string) {
		for _, x := range rooms {
			if x == r {
				return
			}
		}
		rooms = append(rooms, r)
	}
	switch {
	case q.OfferID != "":
		found := false
		for _, it := range items {
			if string(it.GPUType) == q.OfferID {
				found = true
				gpuTypes = append(gpuTypes, q.OfferID)
				addRoom(string(it.RoomName))
			}
		}
		if !found {
			return nil, &providers.Error{Kind: providers.KindNotFound, Provider: Name, Op: "list images",
				Message: fmt.Sprintf("no product with gpu_type %q", q.OfferID), Remedy: "pick an offer from list_gpu_offers"}
		}
	default:
		if q.Region != "" {
			addRoom(q.Region)
		}
		for _, it := range items {
			if it.GPUType == "" || (q.Region != "" && string(it.RoomName) != q.Region) {
				continue
			}
			gpuTypes = append(gpuTypes, string(it.GPUType))
			if q.Region == "" {
				addRoom(string(it.RoomName))
			}
		}
	}

	seen := map[string]bool{}
	var out []providers.Image
	add := func(img providers.Image) {
		if seen[img.ID] {
			return
		}
		seen[img.ID] = true
		out = append(out, img)
	}
	for _, t := range gpuTypes {
		imgs, err := p.publicImages(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, im := range imgs {
			if im.ImageID != "" {
				add(imageOf(im, providers.ImagePublic))
			}
		}
	}
	for _, r := range rooms {
		if r == "" {
			continue
		}
		imgs, err := p.ownImages(ctx, r)
		if err != nil {
			return nil, err
		}
		for _, im := range imgs {
			if im.ImageID != "" {
				img := imageOf(im, providers.ImagePrivate)
				if img.Region == "" {
					img.Region = r
				}
				add(img)
			}
		}
	}
	apps, err := p.apps(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		if a.AppType == "" {
			continue
		}
		if q.OfferID != "" && a.GPUType != "" && string(a.GPUType) != q.OfferID {
			continue
		}
		if q.OfferID == "" && q.Region != "" && a.RoomName != "" && string(a.RoomName) != q.Region {
			continue
		}
		add(appImageOf(a))
	}
	return out, nil
}

// zoneName is a zone (room_name) for people. The documents name zones by number only
// (102, 105, 106: "归属区", the zone a product belongs to), so that is what it says.
func zoneName(room string) string {
	if room == "" {
		return ""
	}
	return "zone " + room
}

func imageOf(im image, kind providers.ImageKind) providers.Image {
	img := providers.Image{
		ID:          string(im.ImageID),
		Provider:    Name,
		Name:        string(im.Name),
		Kind:        kind,
		Description: string(im.Description),
		Region:      string(im.RoomName),
		RegionName:  zoneName(string(im.RoomName)),
	}
	if kind == providers.ImagePrivate {
		var rest string
		img.CreatedAt, rest = ownImageCreated(img.Description)
		if img.CreatedAt != nil {
			// The description is the creation time in Beijing time, unlabelled: created_at
			// carries it, and what else the description says stays.
			img.Description = rest
		}
	}
	return img
}

// ownImageCreated reads the "创建时间: 2024-06-20 17:46:58" (creation time, +08:00) that own
// images carry as their description, and returns the description without it.
func ownImageCreated(desc string) (*time.Time, string) {
	before, rest, ok := strings.Cut(desc, "创建时间")
	if !ok {
		return nil, desc
	}
	rest = strings.TrimLeft(rest, ":： ")
	const layout = "2006-01-02 15:04:05"
	if len(rest) < len(layout) {
		return nil, desc
	}
	t, err := time.ParseInLocation(layout, rest[:len(layout)], cst)
	if err != nil {
		return nil, desc
	}
	return &t, strings.TrimSpace(before + rest[len(layout):])
}

func appImageOf(a app) providers.Image {
	title := string(a.Title)
	if title == "" {
		title = string(a.AppType)
	}
	desc := fmt.Sprintf("one-click app %s (app_type %s)", title, a.AppType)
	if a.CPU > 0 || a.Memory > 0 {
		desc += fmt.Sprintf(": %d vCPUs, %d GB RAM, %d GB system disk, %d GB data disk", a.CPU, a.Memory, a.DiskOne, a.DiskDataOne)
	}
	if a.GPUType != "" {
		desc += "; runs on " + string(a.GPUType)
	} else {
		desc += "; HuiXingYun chooses its machine (1 GPU), whatever the offer"
	}
	return providers.Image{
		ID:          appImagePrefix + string(a.AppType),
		Provider:    Name,
		Name:        title,
		Kind:        providers.ImageApp,
		Description: desc,
		Region:      string(a.RoomName),
	}
}
