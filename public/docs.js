// The API reference: Swagger UI (public/vendor/swagger-ui, copied from node_modules) over /openapi.json.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#reference", deepLinking: true });
