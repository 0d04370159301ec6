package huixingyun

import (
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

// Vendor describes HuiXingYun to the vendor list.
var Vendor = providers.Vendor{Name: Name, Title: "HuiXingYun", EnvPrefix: "HUIXINGYUN_", Hint: "HUIXINGYUN_TOKEN",
	Config: func() providers.VendorConfig { return &Config{} }, Capabilities: capabilities,
	Emulate: hxytest.Emulate, Endpoints: hxytest.Endpoints}
