package dashboards

// A small model of Grafana's dashboard JSON (schemaVersion 39): only the
// fields wre's dashboards set; Grafana fills in the rest on import.

// Dashboard is a Grafana dashboard.
type Dashboard struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	Description   string     `json:"description"`
	Tags          []string   `json:"tags"`
	Editable      bool       `json:"editable"`
	GraphTooltip  int        `json:"graphTooltip"`
	Refresh       string     `json:"refresh"`
	SchemaVersion int        `json:"schemaVersion"`
	Time          TimeRange  `json:"time"`
	Timezone      string     `json:"timezone"`
	Links         []Link     `json:"links"`
	Templating    Templating `json:"templating"`
	Panels        []*Panel   `json:"panels"`
}

// TimeRange is the default time range of a dashboard.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Link links to other dashboards by tag.
type Link struct {
	Title    string   `json:"title"`
	Type     string   `json:"type"`
	Tags     []string `json:"tags"`
	AsDropdn bool     `json:"asDropdown"`
}

// Templating holds the template variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a template variable.
type Variable struct {
	Name       string      `json:"name"`
	Label      string      `json:"label,omitempty"`
	Type       string      `json:"type"`
	Datasource *Datasource `json:"datasource,omitempty"`
	Query      string      `json:"query"`
	Definition string      `json:"definition,omitempty"`
	Refresh    int         `json:"refresh,omitempty"`
	IncludeAll bool        `json:"includeAll"`
	Multi      bool        `json:"multi"`
	AllValue   string      `json:"allValue,omitempty"`
	Sort       int         `json:"sort,omitempty"`
	Hide       int         `json:"hide"`
	Current    Current     `json:"current"`
}

// Current is the selected value of a variable.
type Current struct {
	Text  string `json:"text,omitempty"`
	Value string `json:"value,omitempty"`
}

// Datasource points at the datasource template variable.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Panel is a panel or a row.
type Panel struct {
	ID              int             `json:"id"`
	Type            string          `json:"type"`
	Title           string          `json:"title"`
	Description     string          `json:"description,omitempty"`
	GridPos         GridPos         `json:"gridPos"`
	Collapsed       *bool           `json:"collapsed,omitempty"`
	Panels          []*Panel        `json:"panels,omitempty"`
	Datasource      *Datasource     `json:"datasource,omitempty"`
	Targets         []Target        `json:"targets,omitempty"`
	FieldConfig     *FieldConfig    `json:"fieldConfig,omitempty"`
	Options         map[string]any  `json:"options,omitempty"`
	Transformations []Transformaton `json:"transformations,omitempty"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one PromQL query of a panel.
type Target struct {
	RefID        string      `json:"refId"`
	Datasource   *Datasource `json:"datasource"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat,omitempty"`
	Instant      bool        `json:"instant,omitempty"`
	Range        bool        `json:"range"`
	Format       string      `json:"format,omitempty"`
}

// FieldConfig sets units, thresholds and value mappings.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []any         `json:"overrides"`
}

// FieldDefaults are the field settings of every series of a panel.
type FieldDefaults struct {
	Unit       string         `json:"unit,omitempty"`
	Min        *float64       `json:"min,omitempty"`
	Max        *float64       `json:"max,omitempty"`
	Decimals   *int           `json:"decimals,omitempty"`
	Thresholds *Thresholds    `json:"thresholds,omitempty"`
	Mappings   []any          `json:"mappings,omitempty"`
	Color      map[string]any `json:"color,omitempty"`
	Custom     map[string]any `json:"custom,omitempty"`
}

// Thresholds colour a value.
type Thresholds struct {
	Mode  string `json:"mode"`
	Steps []Step `json:"steps"`
}

// Step is one threshold; a nil Value is the base colour.
type Step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// Transformaton is a Grafana data transformation.
type Transformaton struct {
	ID      string         `json:"id"`
	Options map[string]any `json:"options"`
}
