// Package apicheck holds only a test: the packages other modules import
// (the agent library, the backend's command sender, the wire format and
// contracts, the constructs) expose no type of an internal/ package, since
// a vendor's or another team's module cannot name such a type and so cannot
// use the API that carries it.
package apicheck

import (
	"go/types"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// public are the package patterns meant for use from other modules.
var public = []string{
	"github.com/agentgate/agentgate/agent/...",
	"github.com/agentgate/agentgate/contract/...",
	"github.com/agentgate/agentgate/command/...",
	"github.com/agentgate/agentgate/constructs/...",
}

func TestPublicAPIExposesNoInternalType(t *testing.T) {
	pkgs, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedTypes}, public...)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("loaded %d packages from %v; the patterns no longer match the public tree", len(pkgs), public)
	}
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Errorf("%s: %v", p.PkgPath, e)
		}
		for _, f := range exposedInternal(p.Types) {
			t.Errorf("%s.%s", p.PkgPath, f)
		}
	}
}

// The check finds what it is for: a signature, a field, an interface
// method and a method that carry an internal type.
func TestExposedInternalFindsEveryKind(t *testing.T) {
	internal := types.NewPackage("example.com/m/internal/x", "x")
	secret := types.NewNamed(types.NewTypeName(0, internal, "Secret", nil), types.Typ[types.Int], nil)
	pkg := types.NewPackage("example.com/m/api", "api")
	sc := pkg.Scope()
	param := types.NewParam(0, pkg, "s", secret)
	sig := types.NewSignatureType(nil, nil, nil, types.NewTuple(param), nil, false)
	sc.Insert(types.NewFunc(0, pkg, "Use", sig))
	sc.Insert(types.NewFunc(0, pkg, "use", sig)) // unexported: not reported
	st := types.NewStruct([]*types.Var{types.NewField(0, pkg, "Field", secret, false)}, nil)
	sc.Insert(types.NewTypeName(0, pkg, "Config", st))
	it := types.NewInterfaceType([]*types.Func{types.NewFunc(0, pkg, "Get", types.NewSignatureType(nil, nil, nil, nil, types.NewTuple(param), false))}, nil)
	it.Complete()
	sc.Insert(types.NewTypeName(0, pkg, "Getter", it))
	named := types.NewNamed(types.NewTypeName(0, pkg, "Thing", nil), types.NewStruct(nil, nil), nil)
	named.AddMethod(types.NewFunc(0, pkg, "Set", types.NewSignatureType(types.NewParam(0, pkg, "t", named), nil, nil, types.NewTuple(param), nil, false)))
	sc.Insert(named.Obj())

	got := strings.Join(exposedInternal(pkg), "\n")
	for _, want := range []string{"Use ", "Config field Field", "Getter method Get", "Thing method Set"} {
		if !strings.Contains(got, want) {
			t.Errorf("not reported: %s\nreported:\n%s", want, got)
		}
	}
	if strings.Contains(got, "use ") {
		t.Errorf("an unexported function was reported:\n%s", got)
	}
}

// exposedInternal lists pkg's exported names whose type, exported fields,
// interface methods or exported methods mention a package under internal/.
func exposedInternal(pkg *types.Package) []string {
	var out []string
	report := func(what string, t types.Type) {
		if s := types.TypeString(t, nil); strings.Contains(s, "/internal/") {
			out = append(out, what+": "+s)
		}
	}
	sc := pkg.Scope()
	for _, name := range sc.Names() {
		o := sc.Lookup(name)
		if !o.Exported() {
			continue
		}
		tn, isType := o.(*types.TypeName)
		if !isType {
			report(name+" ", o.Type())
			continue
		}
		switch u := tn.Type().Underlying().(type) {
		case *types.Struct:
			for i := range u.NumFields() {
				if f := u.Field(i); f.Exported() || f.Embedded() {
					report(name+" field "+f.Name(), f.Type())
				}
			}
		case *types.Interface:
			for i := range u.NumMethods() {
				report(name+" method "+u.Method(i).Name(), u.Method(i).Type())
			}
		default:
			report(name+" ", u)
		}
		if n, ok := tn.Type().(*types.Named); ok {
			for i := range n.NumMethods() {
				if m := n.Method(i); m.Exported() {
					report(name+" method "+m.Name(), m.Type())
				}
			}
		}
	}
	return out
}
