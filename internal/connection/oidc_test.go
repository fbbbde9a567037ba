package connection

import (
	"errors"
	"testing"
)

func TestOIDCProblems(t *testing.T) {
	roles := []string{"viewer", "member", "admin"}
	ok := OIDC{Issuer: "https://accounts.example.com", ClientID: "edge", ClientSecretFile: "/run/secrets/client"}
	tests := []struct {
		name  string
		edit  func(*OIDC)
		field string
	}{
		{"valid", func(*OIDC) {}, ""},
		{"secret from env", func(s *OIDC) { s.ClientSecretFile, s.ClientSecretEnv = "", "ACME_OIDC_SECRET" }, ""},
		{"private_key_jwt", func(s *OIDC) {
			s.TokenEndpointAuth, s.ClientSecretFile, s.PrivateKeyFile = AuthPrivateKeyJWT, "", "/k.pem"
		}, ""},
		{"localhost http issuer", func(s *OIDC) { s.Issuer = "http://127.0.0.1:9000" }, ""},
		{"no issuer", func(s *OIDC) { s.Issuer = "" }, "issuer"},
		{"http issuer", func(s *OIDC) { s.Issuer = "http://accounts.example.com" }, "issuer"},
		{"no client id", func(s *OIDC) { s.ClientID = " " }, "client_id"},
		{"no secret source", func(s *OIDC) { s.ClientSecretFile = "" }, "client_secret_file"},
		{"two secret sources", func(s *OIDC) { s.ClientSecretEnv = "X" }, "client_secret_file"},
		{"private_key_jwt without key", func(s *OIDC) { s.TokenEndpointAuth = AuthPrivateKeyJWT }, "private_key_file"},
		{"unknown auth", func(s *OIDC) { s.TokenEndpointAuth = "tls_client_auth" }, "token_endpoint_auth"},
		{"alg none", func(s *OIDC) { s.AllowedAlgs = []string{"RS256", "none"} }, "allowed_algs[1]"},
		{"alg HS256", func(s *OIDC) { s.AllowedAlgs = []string{"HS256"} }, "allowed_algs[0]"},
		{"unknown constant role", func(s *OIDC) { s.Constants.Roles = []string{"root"} }, "constants.roles[0]"},
		{"unknown group role", func(s *OIDC) { s.GroupRoles = []GroupRole{{Group: "g", Role: "root"}} }, "group_roles[0].role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			got := s.Problems(roles)
			if tt.field == "" {
				if len(got) != 0 {
					t.Errorf("got %v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Field != tt.field {
				t.Errorf("got %v, want one problem on %s", got, tt.field)
			}
		})
	}
	var p Problem
	if _, err := DecodeOIDC([]byte(`{"issuer":"https://x","client_secret":"s3cret"}`)); !errors.As(err, &p) || p.Field != "client_secret" {
		t.Errorf("an inline client secret: got %v, want it refused as an unknown setting", err)
	}
}
