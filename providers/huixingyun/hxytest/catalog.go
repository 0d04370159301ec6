package hxytest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// The starting catalog: the products, apps and images of the vendor's document, plus a few
// more products (zones 102, 105, 106) so that the demo looks like a real account.

type productJSON struct {
	Name        string `json:"name"`
	GPUType     string `json:"gpu_type"`
	DiskCap     int    `json:"disk_cap"`
	Memory      int    `json:"memory"`
	CPU         int    `json:"cpu"`
	RoomName    string `json:"room_name"`
	GPURemain   int    `json:"gpu_remain"`
	DiskOne     int    `json:"disk_one"`
	DiskDataOne int    `json:"disk_data_one"`
	GPURAM      int    `json:"gpu_ram"`
}

type appJSON struct {
	AppType     string `json:"app_type"`
	Memory      int    `json:"memory"`
	CPU         int    `json:"cpu"`
	DiskOne     int    `json:"disk_one"`
	DiskDataOne int    `json:"disk_data_one"`
	Title       string `json:"title"`
}

type imageJSON struct {
	Name        string `json:"name"`
	ImageID     string `json:"image_id"`
	Scene       string `json:"scene"`
	OS          string `json:"os"`
	Description string `json:"description"`
	RoomName    string `json:"room_name"`
}

// AppGPUType is the product one-click apps run on: the app buy names no product, and the
// document does not say which machine the vendor picks.
const AppGPUType = "geforce_rtx_4090_16u100m_106"

func startingProducts() []*productJSON {
	return []*productJSON{
		// The document's three products.
		{Name: "NVIDIA 4090 免费版", GPUType: "geforce_rtx_4090_free_102", DiskCap: 1340, Memory: 90, CPU: 16, RoomName: "102", GPURemain: 1, DiskOne: 60, DiskDataOne: 100, GPURAM: 24},
		{Name: "NVIDIA 4090", GPUType: "geforce_rtx_4090_16u100m_106", DiskCap: 4000, Memory: 100, CPU: 16, RoomName: "106", GPURemain: 8, DiskOne: 60, DiskDataOne: 100, GPURAM: 24},
		{Name: "NVIDIA 4090", GPUType: "geforce_rtx_4090_16u60m_106", DiskCap: 4000, Memory: 60, CPU: 16, RoomName: "106", GPURemain: 8, DiskOne: 60, DiskDataOne: 100, GPURAM: 24},
		// The instance list example runs on this one.
		{Name: "NVIDIA 4090", GPUType: "geforce_rtx_4090_16u100m_105", DiskCap: 4000, Memory: 100, CPU: 16, RoomName: "105", GPURemain: 4, DiskOne: 60, DiskDataOne: 100, GPURAM: 24},
		{Name: "NVIDIA 3090", GPUType: "geforce_rtx_3090_12u60m_105", DiskCap: 2000, Memory: 60, CPU: 12, RoomName: "105", GPURemain: 6, DiskOne: 60, DiskDataOne: 100, GPURAM: 24},
		{Name: "NVIDIA A100 80G", GPUType: "a100_80g_32u240m_105", DiskCap: 8000, Memory: 240, CPU: 32, RoomName: "105", GPURemain: 4, DiskOne: 60, DiskDataOne: 200, GPURAM: 80},
		{Name: "NVIDIA H800", GPUType: "h800_80g_64u480m_102", DiskCap: 8000, Memory: 480, CPU: 64, RoomName: "102", GPURemain: 8, DiskOne: 100, DiskDataOne: 500, GPURAM: 80},
		{Name: "NVIDIA L40S", GPUType: "l40s_48g_32u180m_106", DiskCap: 4000, Memory: 180, CPU: 32, RoomName: "106", GPURemain: 0, DiskOne: 60, DiskDataOne: 200, GPURAM: 48},
	}
}

// startingApps is the document's app list, verbatim.
func startingApps() []appJSON {
	mk := func(t, title string) appJSON {
		return appJSON{AppType: t, Memory: 100, CPU: 16, DiskOne: 60, DiskDataOne: 100, Title: title}
	}
	return []appJSON{
		mk("sd-webui", "Stable Diffusion WebUI"),
		mk("comfyui", "ComfyUI"),
		mk("fooocus", "Fooocus"),
		mk("rvc-webui", "RVC WebUI"),
		mk("openwebui", "Open WebUI"),
		mk("comfyui-clay", "ComfyUI-Clay"),
	}
}

const baseSoftware = "ubuntu 22.04, nvidia_driver 535.161.08, miniconda py310_23.11.0-2, jupyterlab 4.1.2, filebrowser 2.27.0,"

// docOpenWebUIImageID is the image_id of the document's public image example (zone 105).
const docOpenWebUIImageID = "0917a7f0-1c03-11ef-9f0d-4faf337438da"

// publicImages returns the public images of a zone: five per zone, like the document's
// total_items, with the document's own example in zone 105.
func publicImages(room string) []imageJSON {
	mk := func(name, desc string) imageJSON {
		return imageJSON{Name: name, ImageID: uuidOf("public/" + room + "/" + name), Scene: "Gpu", OS: "linux", Description: desc, RoomName: room}
	}
	imgs := []imageJSON{
		mk("ubuntu22.04_cuda12.1_20240525", baseSoftware+" cuda 12.1,"),
		mk("pytorch2.1.2_cuda12.1_20240525", baseSoftware+" cuda 12.1, pytorch 2.1.2,"),
		mk("app-sd-webui_20240525", baseSoftware+" stable-diffusion-webui 1.9.3,"),
		mk("app-comfyui_20240525", baseSoftware+" ComfyUI 18c151b,"),
		mk("app-openwebui_20240525", baseSoftware+" Ollama 0.1.32, ComfyUI 18c151b, OpenWebUI 0.1.123,"),
	}
	if room == "105" {
		imgs[4].ImageID = docOpenWebUIImageID
	}
	return imgs
}

// startingOwnImages are the document's two custom images (zone 105); the document masks part
// of their ids with xxxx, filled in here with hex digits.
func startingOwnImages() []*ownImage {
	return []*ownImage{
		{imageJSON: imageJSON{Name: "镜像1", ImageID: "9b2b140e-8d2c-4a61-9f0e-78ecb2a1ac9b", Scene: "Gpu", OS: "linux", Description: "创建时间: 2024-06-20 17:46:58", RoomName: "105"}},
		{imageJSON: imageJSON{Name: "镜像2", ImageID: "1b66a8fb-8708-4c2d-8e5b-9714585ec6b2", Scene: "Gpu", OS: "linux", Description: "创建时间: 2024-06-20 18:53:24", RoomName: "105"}},
	}
}

// uuidOf derives a stable, well-formed UUID from seed.
func uuidOf(seed string) string {
	h := sha256.Sum256([]byte(seed))
	h[6] = h[6]&0x0f | 0x40 // version 4
	h[8] = h[8]&0x3f | 0x80 // RFC 4122 variant
	s := hex.EncodeToString(h[:16])
	return fmt.Sprintf("%s-%s-%s-%s-%s", s[0:8], s[8:12], s[12:16], s[16:20], s[20:32])
}
