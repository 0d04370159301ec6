package chenyu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/flex"
)

// Wire types: Chenyu's JSON exactly (vendor-api.md 4.3-4.4), numbers decoded tolerantly.

// envelope wraps every answer. code may be a number or a string (quirk 5.3.13); data is
// absent from action answers (quirk 5.3.12).
type envelope struct {
	Code json.RawMessage `json:"code"`
	Msg  flex.String     `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// codeText returns code as text ("0", "2", "-2", "429"), and false when it is absent or not
// a scalar.
func (e envelope) codeText() (string, bool) {
	if len(bytes.TrimSpace(e.Code)) == 0 {
		return "", false
	}
	var s flex.String
	if err := json.Unmarshal(e.Code, &s); err != nil || s == "" {
		return "", false
	}
	t := string(s)
	// A float-encoded code such as 0.0 is still success.
	if f, err := strconv.ParseFloat(t, 64); err == nil && f == math.Trunc(f) {
		t = strconv.FormatInt(int64(f), 10)
	}
	return t, true
}

type wireInstance struct {
	InstanceUUID    string            `json:"instance_uuid"`
	Status          flex.String       `json:"status"`
	Title           flex.String       `json:"title"`
	CreateTime      flex.Int          `json:"create_time"`
	StartTime       flex.Int          `json:"start_time"`
	ServerURL       []json.RawMessage `json:"server_url"`
	ServerMap       []wireService     `json:"server_map"`
	SaveImageStatus flex.Int          `json:"save_image_status"`
	ChargingType    flex.Int          `json:"charging_type"`
	ShutdownRegular *wireShutdown     `json:"shutdown_regular"`
	ImageUUID       flex.String       `json:"image_uuid"`
	ImageName       flex.String       `json:"image_name"`
	ImageTag        flex.String       `json:"image_tag"`
	GPUUUID         flex.String       `json:"gpu_uuid"`
	GPUName         flex.String       `json:"gpu_name"`
	GPUNums         flex.Int          `json:"gpu_nums"`
}

type wireService struct {
	Title    flex.String `json:"title"`
	URL      flex.String `json:"url"`
	PortType flex.String `json:"port_type"`
	Protocol flex.String `json:"protocol"`
	SSHInfo  *wireSSH    `json:"ssh_info"`
}

type wireSSH struct {
	Host     flex.String `json:"host"`
	Port     flex.Int    `json:"port"`
	Username flex.String `json:"username"`
	Password flex.String `json:"password"`
}

type wireShutdown struct {
	ShutdownTime flex.Int `json:"shutdown_time"`
	Enable       flexBool `json:"enable"`
}

// flexBool accepts true/false, 1/0 and their string forms.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var s flex.String
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	switch strings.ToLower(string(s)) {
	case "true", "1":
		*b = true
	case "false", "0", "":
		*b = false
	default:
		return fmt.Errorf("not a boolean: %q", string(s))
	}
	return nil
}

// wireServerURL is one server_url entry: documented as an object, shown as a string
// (quirk 5.3.2).
type wireServerURL struct {
	Name, URL string
}

func (u *wireServerURL) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		u.URL = strings.TrimSpace(s)
		return nil
	}
	var o struct {
		URL   flex.String `json:"url"`
		Title flex.String `json:"title"`
		Name  flex.String `json:"name"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	u.URL = string(o.URL)
	u.Name = string(o.Title)
	if u.Name == "" {
		u.Name = string(o.Name)
	}
	return nil
}

type wirePrice struct {
	Hour  *flex.Float `json:"hour"`
	Day   *flex.Float `json:"day"`
	Week  *flex.Float `json:"week"`
	Month *flex.Float `json:"month"`
	Year  *flex.Float `json:"year"`
}

type wireGPU struct {
	GPUName flex.String `json:"gpu_name"`
	GPUUUID string      `json:"gpu_uuid"`
	Status  flex.Int    `json:"status"`
	Price   *wirePrice  `json:"price"`
}

type wirePod struct {
	Title  flex.String   `json:"title"`
	UUID   string        `json:"uuid"`
	Remark flex.String   `json:"remark"`
	PodTag []flex.String `json:"pod_tag"`
	Price  *wirePrice    `json:"price"`
}

type wireMarketImage struct {
	UUID       string                 `json:"uuid"`
	Components map[string]flex.String `json:"components"`
	Size       flex.Float             `json:"size"` // bytes
	CreatedAt  flex.Int               `json:"created_at"`
	UpdatedAt  flex.Int               `json:"updated_at"`
}

type wirePrivateImage struct {
	Title           flex.String `json:"title"`
	UUID            string      `json:"uuid"`
	Remark          flex.String `json:"remark"`
	LayerCount      flex.Int    `json:"layer_count"`
	Size            flex.Float  `json:"size"` // GB per the example (12.5), unlike the market list
	PodUUID         flex.String `json:"pod_uuid"`
	PodTag          flex.String `json:"pod_tag"`
	SaveImageStatus flex.Int    `json:"save_image_status"`
	CreateTime      flex.Int    `json:"create_time"`
}

type wireBalance struct {
	Balance     flex.Float `json:"balance"`
	CardBalance flex.Float `json:"card_balance"`
}

// Request bodies.

type createByImageBody struct {
	ImageUUID string `json:"image_uuid"`
	GPUUUID   string `json:"gpu_uuid"`
	GPUNums   int    `json:"gpu_nums"`
}

type createByPodBody struct {
	PodUUID string `json:"pod_uuid"`
	PodTag  string `json:"pod_tag,omitempty"`
	GPUUUID string `json:"gpu_uuid"`
	GPUNums int    `json:"gpu_nums"`
}

type instanceBody struct {
	InstanceUUID string `json:"instance_uuid"`
}

type startupBody struct {
	InstanceUUID string `json:"instance_uuid"`
	GPUUUID      string `json:"gpu_uuid,omitempty"`
	GPUNums      int    `json:"gpu_nums,omitempty"`
}

type saveImageBody struct {
	InstanceUUID string `json:"instance_uuid"`
	ImageName    string `json:"image_name"`
	Remark       string `json:"remark"`
}

type shutdownTimerBody struct {
	InstanceUUID string `json:"instance_uuid"`
	Enable       bool   `json:"enable"`
	ShutdownTime int64  `json:"shutdown_time"`
}

type updateTitleBody struct {
	InstanceUUID string `json:"instance_uuid"`
	Title        string `json:"title"`
}
