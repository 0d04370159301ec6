package chenyu

import (
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
)

// Vendor describes Chenyu to the vendor list.
var Vendor = providers.Vendor{Name: Name, Title: "Chenyu", EnvPrefix: "CHENYU_", Hint: "CHENYU_API_KEY",
	Config: func() providers.VendorConfig { return &Config{} }, Capabilities: capabilities,
	Emulate: cytest.Emulate, Endpoints: cytest.Endpoints}
