package dftest

// regionJSON is one element of GET /regions, in the document's key order.
type regionJSON struct {
	ID          string `json:"id"`
	Region      string `json:"region"`
	ClusterName string `json:"clusterName"`
	HarborAddr  string `json:"harborAddr"`
	HowlerID    string `json:"howlerID"`
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
}

// skuJSON is one element of GET /skus/computings, in the document's key order. skusID and
// sellingType are strings, as the document shows.
type skuJSON struct {
	Name              string  `json:"name"`
	RegionID          string  `json:"regionID"`
	CPUArch           string  `json:"cpuArch"`
	CPUSeries         string  `json:"cpuSeries"`
	CPUCores          int     `json:"cpucores"`
	MemoryCount       int     `json:"memoryCount"`
	CPUVendor         string  `json:"cpuVendor"`
	GPUSeries         string  `json:"gpuSeries"`
	GPUProduct        string  `json:"gpuProduct"`
	GPUResourceKey    string  `json:"gpuResourceKey"`
	GPUCounts         int     `json:"gpuCounts"`
	GPUMemory         int     `json:"gpuMemory"`
	SystemStorage     int     `json:"systemstorage"`
	DataStorage       int     `json:"datastorage"`
	SKUsID            string  `json:"skusID"`
	RegionName        string  `json:"regionName"`
	ClusterName       string  `json:"clusterName"`
	SellingType       string  `json:"sellingType"`
	Ratio             float64 `json:"ratio"`
	DiscountID        string  `json:"discountID"`
	DiscountStartTime string  `json:"discountStartTime"`
	DiscountEndTime   string  `json:"discountEndTime"`
	Price             float64 `json:"price"`
	RemainGPUCount    int     `json:"remainGPUCount"`
}

// sku is a catalog row plus what the instance answers need from it.
type sku struct {
	skuJSON
	machine string // the gpu.machine annotation and resources.GPUType, e.g. "4090"
}

const (
	bjRegionID = "14c5a9e3-0d09-4aa0-99d3-c096b80cceaa"
	shRegionID = "3f6b8d2e-51a7-4c09-b8e4-7d2c90a1e5f3"
	noTime     = "0001-01-01T00:00:00Z"
)

// defaultRegions starts from the document's example (北京一区 / host-cluster) and adds one.
func defaultRegions() []regionJSON {
	return []regionJSON{
		{ID: bjRegionID, Region: "北京一区", ClusterName: "host-cluster", HarborAddr: "images.neolink-ai.com",
			HowlerID: "69e377a7-99d1-cca0-ef58-cfce14a336b2", CreatedAt: "2024-07-15T12:00:23.227+08:00", UpdatedAt: "2024-07-15T12:00:23.227+08:00"},
		{ID: shRegionID, Region: "上海一区", ClusterName: "sh-cluster", HarborAddr: "images.neolink-ai.com",
			HowlerID: "b2c4d6e8-1a3c-4e5f-8a7b-9c0d1e2f3a4b", CreatedAt: "2024-10-08T09:30:00.512+08:00", UpdatedAt: "2024-11-02T16:05:41.09+08:00"},
	}
}

// defaultSKUs: SKU 2 (H20) is the document's example row verbatim, including its closed
// discount window and the vendor's "Inter" typo; SKU 66 is the RTX 4090 the create example
// names. The others are plausible additions with plausible CNY prices for the demo. Each row
// sells in one way: "1" hourly, "2" monthly, "3" weekly, "4" daily; price is for the whole SKU
// for one such period.
func defaultSKUs() []*sku {
	bj := func(s skuJSON, machine string) *sku {
		s.RegionID, s.RegionName, s.ClusterName = bjRegionID, "北京一区", "host-cluster"
		return &sku{skuJSON: s, machine: machine}
	}
	sh := func(s skuJSON, machine string) *sku {
		s.RegionID, s.RegionName, s.ClusterName = shRegionID, "上海一区", "sh-cluster"
		return &sku{skuJSON: s, machine: machine}
	}
	intel := func(s skuJSON) skuJSON {
		s.CPUArch, s.CPUSeries, s.CPUVendor = "x86-64", "Inter Xeon", "Inter"
		return s
	}
	amd := func(s skuJSON) skuJSON {
		s.CPUArch, s.CPUSeries, s.CPUVendor = "x86-64", "AMD EPYC", "AMD"
		return s
	}
	noDiscount := func(s skuJSON) skuJSON {
		s.Ratio, s.DiscountID, s.DiscountStartTime, s.DiscountEndTime = 1, "", noTime, noTime
		return s
	}
	h20 := func(s skuJSON) skuJSON {
		s.GPUSeries, s.GPUProduct, s.GPUResourceKey, s.GPUMemory = "H20", "H20", "nvidia.com/gpu-h20", 96
		return s
	}
	rtx4090 := func(s skuJSON) skuJSON {
		s.GPUSeries, s.GPUProduct, s.GPUResourceKey, s.GPUMemory = "RTX 4090", "NVIDIA GeForce RTX 4090", "nvidia.com/gpu-4090", 24
		return s
	}
	a800 := func(s skuJSON) skuJSON {
		s.GPUSeries, s.GPUProduct, s.GPUResourceKey, s.GPUMemory = "A800", "NVIDIA A800-SXM4-80GB", "nvidia.com/gpu-a800", 80
		return s
	}
	return []*sku{
		bj(h20(intel(skuJSON{Name: "H20", CPUCores: 24, MemoryCount: 192, GPUCounts: 1, SystemStorage: 30, DataStorage: 50,
			SKUsID: "2", SellingType: "1", Ratio: 0.48, DiscountID: "10000",
			DiscountStartTime: "2024-08-15T15:26:38+08:00", DiscountEndTime: "2024-10-01T00:05:00+08:00", Price: 10, RemainGPUCount: 8})), "H20"),
		bj(noDiscount(rtx4090(intel(skuJSON{Name: "RTX 4090", CPUCores: 16, MemoryCount: 96, GPUCounts: 1, SystemStorage: 30, DataStorage: 50,
			SKUsID: "66", SellingType: "1", Price: 2.2, RemainGPUCount: 16}))), "4090"),
		bj(noDiscount(rtx4090(intel(skuJSON{Name: "RTX 4090", CPUCores: 16, MemoryCount: 96, GPUCounts: 1, SystemStorage: 30, DataStorage: 50,
			SKUsID: "67", SellingType: "2", Price: 1180, RemainGPUCount: 16}))), "4090"),
		bj(noDiscount(rtx4090(intel(skuJSON{Name: "RTX 4090", CPUCores: 64, MemoryCount: 384, GPUCounts: 4, SystemStorage: 30, DataStorage: 200,
			SKUsID: "68", SellingType: "1", Price: 8.8, RemainGPUCount: 16}))), "4090"),
		bj(a800(amd(skuJSON{Name: "A800", CPUCores: 28, MemoryCount: 240, GPUCounts: 1, SystemStorage: 50, DataStorage: 100,
			SKUsID: "70", SellingType: "1", Ratio: 0.8, DiscountID: "10021",
			DiscountStartTime: "2025-01-01T00:00:00+08:00", DiscountEndTime: "2099-12-31T23:59:59+08:00", Price: 6.8, RemainGPUCount: 4})), "A800"),
		bj(noDiscount(a800(amd(skuJSON{Name: "A800", CPUCores: 224, MemoryCount: 1920, GPUCounts: 8, SystemStorage: 50, DataStorage: 500,
			SKUsID: "71", SellingType: "3", Price: 7600, RemainGPUCount: 8}))), "A800"),
		bj(noDiscount(h20(intel(skuJSON{Name: "H20", CPUCores: 24, MemoryCount: 192, GPUCounts: 1, SystemStorage: 30, DataStorage: 50,
			SKUsID: "72", SellingType: "4", Price: 199, RemainGPUCount: 0}))), "H20"),
		sh(noDiscount(intel(skuJSON{Name: "RTX 3090", CPUCores: 12, MemoryCount: 64, GPUSeries: "RTX 3090", GPUProduct: "NVIDIA GeForce RTX 3090",
			GPUResourceKey: "nvidia.com/gpu-3090", GPUCounts: 1, GPUMemory: 24, SystemStorage: 30, DataStorage: 50,
			SKUsID: "80", SellingType: "1", Price: 1.35, RemainGPUCount: 10})), "3090"),
		sh(noDiscount(rtx4090(intel(skuJSON{Name: "RTX 4090", CPUCores: 16, MemoryCount: 96, GPUCounts: 1, SystemStorage: 30, DataStorage: 50,
			SKUsID: "83", SellingType: "1", Price: 2.1, RemainGPUCount: 6}))), "4090"),
		sh(noDiscount(amd(skuJSON{Name: "A100 80G", CPUCores: 16, MemoryCount: 128, GPUSeries: "A100", GPUProduct: "NVIDIA A100-SXM4-80GB",
			GPUResourceKey: "nvidia.com/gpu-a100", GPUCounts: 1, GPUMemory: 80, SystemStorage: 50, DataStorage: 100,
			SKUsID: "81", SellingType: "1", Price: 7.2, RemainGPUCount: 2})), "A100"),
		sh(noDiscount(intel(skuJSON{Name: "H800", CPUCores: 192, MemoryCount: 2048, GPUSeries: "H800", GPUProduct: "NVIDIA H800",
			GPUResourceKey: "nvidia.com/gpu-h800", GPUCounts: 8, GPUMemory: 80, SystemStorage: 100, DataStorage: 1000,
			SKUsID: "82", SellingType: "2", Price: 118000, RemainGPUCount: 8})), "H800"),
	}
}
