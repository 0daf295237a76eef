// Served from this host: no CDN, nothing fetched from elsewhere.
// The key typed into "Authorize" is kept for this tab only (sessionStorage), never in
// localStorage: Swagger UI's persistAuthorization stays off.
(function () {
  var SAVED = "provenance-ledger-docs-auth";

  function remember(authorized) {
    try {
      sessionStorage.setItem(SAVED, JSON.stringify(authorized));
    } catch (ignored) {}  // storage refused: the key lasts until the page reloads
  }

  function forget() {
    try {
      sessionStorage.removeItem(SAVED);
    } catch (ignored) {}
  }

  var rememberInTab = function () {
    return {
      statePlugins: {
        auth: {
          wrapActions: {
            authorize: function (original) {
              return function (payload) {
                remember(payload);
                return original(payload);
              };
            },
            logout: function (original) {
              return function (payload) {
                forget();
                return original(payload);
              };
            },
          },
        },
      },
    };
  };

  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    plugins: [rememberInTab],
    onComplete: function () {
      var saved = null;
      try {
        saved = JSON.parse(sessionStorage.getItem(SAVED) || "null");
      } catch (ignored) {}
      if (saved) {
        window.ui.authActions.authorize(saved);
      }
    },
  });
})();
