package datenfab

import (
	"context"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// officialImages are the public images known without an image-list API, which Datenfab lacks.
// Only the TensorFlow image appears in the documents; the others follow the same registry
// naming and say so.
var officialImages = []struct{ ref, desc string }{
	{"images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04",
		"TensorFlow 2.15.0, Python 3.10, CUDA 12.1, cuDNN 8, Ubuntu 22.04: the official image in Datenfab's API example."},
	{"images.neolink-ai.com/matrixdc/pytorch:2.3.1-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04",
		"PyTorch 2.3.1, Python 3.10, CUDA 12.1, cuDNN 8, Ubuntu 22.04. Not in Datenfab's documents: a likely official image, check the console's image list."},
	{"images.neolink-ai.com/matrixdc/pytorch:2.1.2-python3.10-cuda11.8.0-cudnn8-devel-ubuntu22.04",
		"PyTorch 2.1.2, Python 3.10, CUDA 11.8, cuDNN 8, Ubuntu 22.04. Not in Datenfab's documents: a likely official image, check the console's image list."},
	{"images.neolink-ai.com/matrixdc/ubuntu:22.04-cuda12.1.0-cudnn8-devel",
		"Ubuntu 22.04 with CUDA 12.1 and cuDNN 8. Not in Datenfab's documents: a likely official image, check the console's image list."},
}

// ListImages implements providers.Provider without calling Datenfab: the official images above,
// plus the images this process saved with SaveImage (filtered by q.Region when given).
func (p *Provider) ListImages(ctx context.Context, q providers.ImageQuery) ([]providers.Image, error) {
	out := make([]providers.Image, 0, len(officialImages))
	for _, im := range officialImages {
		out = append(out, providers.Image{
			ID: im.ref, Provider: Name, Name: shortRef(im.ref),
			Kind: providers.ImagePublic, Description: im.desc,
		})
	}
	p.mu.Lock()
	saved := append([]savedImage(nil), p.saved...)
	p.mu.Unlock()
	for _, s := range saved {
		if s.Ref == "" || (q.Region != "" && q.Region != s.Region && q.Region != s.Cluster) {
			continue
		}
		at := s.At
		out = append(out, providers.Image{
			ID: s.Ref, Provider: Name, Name: shortRef(s.Ref), Kind: providers.ImagePrivate,
			Region: s.Region, RegionName: regionInEnglish(s.Region), CreatedAt: &at,
			Description: "saved from instance " + s.Instance + " through this server; the reference is inferred and Datenfab cannot report whether the save finished (check the console)",
		})
	}
	return out, nil
}

// shortRef is an image reference without its registry and namespace: the repository and tag,
// the part people read (the id keeps the whole reference).
func shortRef(ref string) string {
	return ref[strings.LastIndex(ref, "/")+1:]
}
