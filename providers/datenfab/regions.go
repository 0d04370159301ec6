package datenfab

import (
	"strconv"
	"strings"
)

// regionCities are the cities of Chinese cloud regions, for region names in English. The
// documents name one region, 北京一区 (Beijing Zone 1); region names follow the pattern
// <city><number>区 there and at other Chinese clouds.
var regionCities = map[string]string{
	"北京": "Beijing", "上海": "Shanghai", "广州": "Guangzhou", "深圳": "Shenzhen", "杭州": "Hangzhou",
	"南京": "Nanjing", "苏州": "Suzhou", "宁波": "Ningbo", "成都": "Chengdu", "重庆": "Chongqing",
	"武汉": "Wuhan", "西安": "Xi'an", "天津": "Tianjin", "青岛": "Qingdao", "合肥": "Hefei",
	"芜湖": "Wuhu", "长沙": "Changsha", "郑州": "Zhengzhou", "贵阳": "Guiyang", "贵州": "Guizhou",
	"宁夏": "Ningxia", "中卫": "Zhongwei", "庆阳": "Qingyang", "乌兰察布": "Ulanqab", "呼和浩特": "Hohhot",
	"内蒙古": "Inner Mongolia", "香港": "Hong Kong", "华北": "North China", "华东": "East China",
	"华南": "South China", "华中": "Central China", "西南": "Southwest China", "西北": "Northwest China",
}

// zoneNumbers are the zone numbers written in Chinese.
var zoneNumbers = map[string]string{"一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9", "十": "10"}

// regionInEnglish renders a region name of the form <city>[<number>]区, such as 北京一区, in
// English ("Beijing Zone 1"); "" when the name is not of that form or names a city it does not
// know. No two cities' names begin one another, so at most one matches.
func regionInEnglish(name string) string {
	rest, zone := strings.CutSuffix(strings.TrimSpace(name), "区")
	if !zone {
		return ""
	}
	for zh, en := range regionCities {
		num, found := strings.CutPrefix(rest, zh)
		if !found {
			continue
		}
		if num == "" {
			return en + " Zone"
		}
		if n, ok := zoneNumbers[num]; ok {
			return en + " Zone " + n
		}
		if _, err := strconv.Atoi(num); err == nil {
			return en + " Zone " + num
		}
		return ""
	}
	return ""
}
