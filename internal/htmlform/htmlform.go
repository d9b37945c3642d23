// Package htmlform finds the forms of an HTML page and fills them the way a
// browser submits them, for end-to-end tests that drive the login and
// consent pages without a browser.
package htmlform

import (
	"io"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Form is one <form>.
type Form struct {
	Action, Method string
	// Fields are the inputs a browser would submit, in order (checkboxes
	// only when checked), without the submit buttons.
	Fields []Field
	// Buttons are the submit buttons.
	Buttons []Button
	// Inputs are every named input with its type, for assertions.
	Inputs []Input
}

// Field is a name and value.
type Field struct{ Name, Value string }

// Button is a submit button.
type Button struct{ Name, Value, Text string }

// Input is a named input element.
type Input struct {
	Name, Type, Value string
	Checked           bool
}

// Parse returns the forms of the page.
func Parse(r io.Reader) ([]*Form, error) {
	doc, err := html.Parse(r)
	if err != nil {
		return nil, err
	}
	var forms []*Form
	var cur *Form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			a := map[string]string{}
			checked := false
			for _, at := range n.Attr {
				a[at.Key] = at.Val
				if at.Key == "checked" {
					checked = true
				}
			}
			switch n.Data {
			case "form":
				cur = &Form{Action: a["action"], Method: strings.ToLower(a["method"])}
				forms = append(forms, cur)
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
				cur = nil
				return
			case "input":
				if cur != nil && a["name"] != "" {
					t := strings.ToLower(a["type"])
					if t == "" {
						t = "text"
					}
					cur.Inputs = append(cur.Inputs, Input{Name: a["name"], Type: t, Value: a["value"], Checked: checked})
					switch t {
					case "submit":
						cur.Buttons = append(cur.Buttons, Button{Name: a["name"], Value: a["value"], Text: a["value"]})
					case "checkbox", "radio":
						if checked {
							v := a["value"]
							if v == "" {
								v = "on"
							}
							cur.Fields = append(cur.Fields, Field{a["name"], v})
						}
					case "button", "reset", "image":
					default:
						cur.Fields = append(cur.Fields, Field{a["name"], a["value"]})
					}
				}
			case "button":
				if cur != nil && (a["type"] == "" || a["type"] == "submit") {
					cur.Buttons = append(cur.Buttons, Button{Name: a["name"], Value: a["value"], Text: strings.TrimSpace(Text(n))})
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return forms, nil
}

// Text is the text of n and its descendants, as it stands.
func Text(n *html.Node) string {
	var sb strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return sb.String()
}

// Values is what submitting the form with the button gives, with set
// overriding fields by name.
func (f *Form) Values(button *Button, set map[string]string) url.Values {
	v := url.Values{}
	for _, fl := range f.Fields {
		if s, ok := set[fl.Name]; ok {
			v.Set(fl.Name, s)
			continue
		}
		v.Add(fl.Name, fl.Value)
	}
	for k, s := range set {
		if !v.Has(k) {
			v.Set(k, s)
		}
	}
	if button != nil && button.Name != "" {
		v.Set(button.Name, button.Value)
	}
	return v
}

// Button returns the first button whose text or value contains s
// (case-insensitive), or nil.
func (f *Form) Button(s string) *Button {
	s = strings.ToLower(s)
	for i, b := range f.Buttons {
		if strings.Contains(strings.ToLower(b.Text), s) || strings.Contains(strings.ToLower(b.Value), s) {
			return &f.Buttons[i]
		}
	}
	return nil
}

// Input returns the named input, or nil.
func (f *Form) Input(name string) *Input {
	for i, in := range f.Inputs {
		if in.Name == name {
			return &f.Inputs[i]
		}
	}
	return nil
}
