package datenfab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/httpx"
)

// gracePeriodSeconds is what power_off gives processes before they are killed (the documented
// default).
const gracePeriodSeconds = 10

// defaultDataDiskGB sizes the data volume when a SKU row does not say (the document's example).
const defaultDataDiskGB = 50

// Launch implements providers.Provider: POST /clusters/{cluster}/instances.
func (p *Provider) Launch(ctx context.Context, spec providers.LaunchSpec) (providers.LaunchResult, error) {
	op := "launch " + spec.OfferID
	ref, err := parseOfferID(spec.OfferID)
	if err != nil {
		return providers.LaunchResult{}, err
	}
	billing := spec.Billing
	if billing == "" {
		billing = ref.billing
	}
	if !billing.Valid() {
		return providers.LaunchResult{}, errf(providers.KindInvalid, op, "use hourly, daily, weekly or monthly", "unknown billing mode %q", billing)
	}
	image := strings.TrimSpace(spec.ImageID)
	if image == "" || strings.ContainsAny(image, " \t\r\n") {
		return providers.LaunchResult{}, errf(providers.KindInvalid, op, "pass a full image reference, e.g. one from list_images",
			"image_id %q is not an image reference", spec.ImageID)
	}
	if spec.Periods < 0 {
		return providers.LaunchResult{}, errf(providers.KindInvalid, op, "pass periods >= 1, or 0 for one period", "periods must not be negative")
	}

	rows, err := p.clusterSKUs(ctx, op, ref.cluster)
	if err != nil {
		return providers.LaunchResult{}, err
	}
	var row *wireSKU
	for i := range rows {
		if string(rows[i].SKUsID) == ref.skuID && string(rows[i].SellingType) == ref.sellingType {
			row = &rows[i]
			break
		}
	}
	if row == nil {
		return providers.LaunchResult{}, errf(providers.KindNotFound, op, "pick a current offer with list_gpu_offers",
			"datenfab no longer lists SKU %s with selling type %s in cluster %s", ref.skuID, ref.sellingType, ref.cluster)
	}
	gpus := spec.GPUCount
	if gpus == 0 {
		gpus = int(row.GPUCounts)
	}
	if billing != ref.billing || gpus != int(row.GPUCounts) {
		return providers.LaunchResult{}, p.mismatch(op, rows, *row, ref, billing, gpus)
	}

	costTime := ""
	if unit, prepaid := billingToCostTimeUnit[billing]; prepaid {
		n := spec.Periods
		if n == 0 {
			n = 1
		}
		costTime = fmt.Sprintf("%d%s", n, unit)
	}
	name := strings.TrimSpace(spec.Name)
	if name == "" {
		name = "gpu-mcp-" + randomHex(3)
	}
	disk := int(row.DataStorage)
	if disk <= 0 {
		disk = defaultDataDiskGB
	}
	body := wireCreateRequest{
		Cost:        wireCreateCost{CostType: ref.sellingType, CouponID: "", DiskSKUID: "1", GPUSKUID: ref.skuID, CostTime: costTime},
		VolumeMount: []wireVolumeMount{{PathInContainer: "/root/data", Size: disk, Type: "shared-filesystem"}},
		Namespace:   p.namespace,
		DisplayName: name,
		Image:       image,
		// The document says Region defaults to 北京一区 while its example sends "": the cluster
		// in the path already chooses the region.
		Region: "",
	}
	resp, err := p.call(ctx, httpx.Request{Method: http.MethodPost, Path: instancesPath(ref.cluster), Body: body, Mutating: true, Op: op})
	if err != nil {
		return providers.LaunchResult{}, err
	}
	var w wireInstance
	if err := json.Unmarshal(resp.Body, &w); err != nil || w.Name == "" {
		return providers.LaunchResult{}, errf(providers.KindUnknown, op,
			"the instance may have been created: check list_instances before launching again",
			"datenfab accepted the create (HTTP %d) but its answer names no instance: %s", resp.Status, p.http.Excerpt(resp.Body))
	}
	p.mu.Lock()
	p.clusters[w.Name] = ref.cluster
	p.mu.Unlock()
	inst := p.instanceOf(w, ref.cluster)
	if inst.Billing == "" {
		inst.Billing = billing
	}
	p.log.Info().Str("instance", w.Name).Str("cluster", ref.cluster).Str("sku", ref.skuID).Str("billing", string(billing)).Msg("datenfab instance created")
	return providers.LaunchResult{InstanceID: w.Name, OrderID: inst.OrderID, Instance: &inst}, nil
}

// clusterSKUs returns the SKU rows of the region(s) served by cluster.
func (p *Provider) clusterSKUs(ctx context.Context, op, cluster string) ([]wireSKU, error) {
	regions, err := p.listRegions(ctx)
	if err != nil {
		return nil, err
	}
	var rows []wireSKU
	found := false
	for _, r := range regions {
		if r.ClusterName != cluster {
			continue
		}
		found = true
		skus, err := p.listSKUs(ctx, r)
		if err != nil {
			return nil, err
		}
		for _, s := range skus {
			if s.ClusterName == cluster {
				rows = append(rows, s)
			}
		}
	}
	if !found {
		return nil, errf(providers.KindNotFound, op, "pick a current offer with list_gpu_offers", "datenfab has no cluster %q", cluster)
	}
	return rows, nil
}

// mismatch explains a launch whose billing or GPU count differs from the offer's row, naming
// the offers that would fit.
func (p *Provider) mismatch(op string, rows []wireSKU, row wireSKU, ref offerRef, billing providers.BillingMode, gpus int) error {
	var alts []string
	want := billingToSelling[billing]
	for _, s := range rows {
		if s.Name == row.Name && string(s.SellingType) == want && int(s.GPUCounts) == gpus {
			alts = append(alts, providers.QualifyID(Name, offerLocalID(s)))
		}
	}
	what := fmt.Sprintf("offer %s is %s billing with %d GPU(s), but the launch asks for %s billing with %d GPU(s)",
		providers.QualifyID(Name, offerLocalID(row)), ref.billing, int(row.GPUCounts), billing, gpus)
	remedy := fmt.Sprintf("datenfab has no %s offer of %s with %d GPU(s) in this region; choose another offer from list_gpu_offers", billing, row.Name, gpus)
	if len(alts) > 0 {
		remedy = "use offer_id " + strings.Join(alts, " or ") + " instead"
	}
	return errf(providers.KindInvalid, op, remedy, "%s; each datenfab offer has one billing mode and GPU count", what)
}

// Start implements providers.Provider: POST .../power_on with no body. The document's header
// line says power_off, but its code calls power_on (quirk 5.2.1).
func (p *Provider) Start(ctx context.Context, id string) error {
	return p.instanceAction(ctx, "start "+id, id, func(cluster string) error {
		return p.action(ctx, http.MethodPost, instancePath(cluster, id)+"/power_on", nil, nil, "start "+id)
	})
}

// Stop implements providers.Provider: POST .../power_off {"gracePeriodSeconds":10}.
func (p *Provider) Stop(ctx context.Context, id string) error {
	return p.instanceAction(ctx, "stop "+id, id, func(cluster string) error {
		return p.action(ctx, http.MethodPost, instancePath(cluster, id)+"/power_off", nil,
			wirePowerOff{GracePeriodSeconds: gracePeriodSeconds}, "stop "+id)
	})
}

// Destroy implements providers.Provider: DELETE /clusters/{cluster}/instances?name=<name>; the
// name is a query parameter, unlike the other calls (quirk 5.2.4).
func (p *Provider) Destroy(ctx context.Context, id string) error {
	op := "destroy " + id
	err := p.instanceAction(ctx, op, id, func(cluster string) error {
		return p.action(ctx, http.MethodDelete, instancesPath(cluster), url.Values{"name": {id}}, nil, op)
	})
	if err == nil {
		p.forget(id)
	}
	return err
}

// SaveImage implements providers.Provider: power_off with needSnapshot. It returns the likely
// reference of the image, <harborAddr>/<namespace>/<imageName>:<tag>: the document does not
// say where the snapshot goes, so this reference is inferred, not confirmed.
func (p *Provider) SaveImage(ctx context.Context, id, name string) (string, error) {
	op := "save image of " + id
	repo, tag, err := parseImageName(op, name)
	if err != nil {
		return "", err
	}
	var ref string
	err = p.instanceAction(ctx, op, id, func(cluster string) error {
		harbor, region, err := p.harborOf(ctx, cluster)
		if err != nil {
			return err
		}
		body := wirePowerOff{GracePeriodSeconds: gracePeriodSeconds, NeedSnapshot: true, ImageName: repo, Tag: tag}
		if err := p.action(ctx, http.MethodPost, instancePath(cluster, id)+"/power_off", nil, body, op); err != nil {
			return err
		}
		if harbor != "" {
			ref = harbor + "/" + p.namespace + "/" + repo + ":" + tag
		}
		p.mu.Lock()
		p.saved = append(p.saved, savedImage{Ref: ref, Instance: id, Cluster: cluster, Region: region, At: p.now()})
		p.mu.Unlock()
		return nil
	})
	return ref, err
}

// instanceAction validates id, finds its cluster and runs do; a not-found answer clears the cache.
func (p *Provider) instanceAction(ctx context.Context, op, id string, do func(cluster string) error) error {
	if err := checkInstanceID(op, id); err != nil {
		return err
	}
	cluster, err := p.clusterOf(ctx, op, id)
	if err != nil {
		return err
	}
	err = do(cluster)
	if providers.KindOf(err) == providers.KindNotFound {
		p.forget(id)
	}
	return err
}

// harborOf returns the image registry and region name of a cluster.
func (p *Provider) harborOf(ctx context.Context, cluster string) (string, string, error) {
	p.mu.Lock()
	r, ok := p.regions[cluster]
	p.mu.Unlock()
	if !ok {
		if _, err := p.fetchRegions(ctx); err != nil {
			return "", "", err
		}
		p.mu.Lock()
		r = p.regions[cluster]
		p.mu.Unlock()
	}
	return r.Harbor, r.Name, nil
}

var (
	imageRepoRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	imageTagRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`) // at most 128 long
)

// parseImageName splits "name" or "name:tag" (tag "latest" by default) and checks both against
// the Docker reference grammar, which the registry enforces.
func parseImageName(op, s string) (repo, tag string, err error) {
	s = strings.TrimSpace(s)
	repo, tag, hasTag := strings.Cut(s, ":")
	if !hasTag {
		tag = "latest"
	}
	if !imageRepoRE.MatchString(repo) || len(repo) > 128 {
		return "", "", errf(providers.KindInvalid, op, "use lowercase letters, digits and . _ - (e.g. my-model or my-model:v1)",
			"image name %q is not a valid image repository name", repo)
	}
	if !imageTagRE.MatchString(tag) || len(tag) > 128 {
		return "", "", errf(providers.KindInvalid, op, "use letters, digits and . _ - in the tag, at most 128 characters (e.g. my-model:v1)",
			"image tag %q is not valid", tag)
	}
	return repo, tag, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
