package datenfab

import (
	"context"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

const anyReference = " Any full registry reference is accepted as image_id."

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
			ID: im.ref, Provider: Name, Name: im.ref,
			Kind: providers.ImagePublic, Description: im.desc + anyReference,
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
			ID: s.Ref, Provider: Name, Name: s.Ref, Kind: providers.ImagePrivate,
			Region: s.Region, CreatedAt: &at,
			Description: "saved from instance " + s.Instance + " through this server at " + s.At.Format(time.RFC3339) +
				"; the reference is inferred and Datenfab cannot report whether the save finished (check the console)." + anyReference,
		})
	}
	return out, nil
}
