{#- saltmasq: post this salt-cloud event to saltmasq's webhook.
    The body is rendered as a JSON *string*: http.query would url-encode a dict.
    URL and token come from the `saltmasq:` block of the master config (master.d/saltmasq.conf).
    The runner's result is discarded by the reactor; `status: True` puts the HTTP status in the
    master log at debug level, and saltmasq's periodic resync catches an event lost here. #}
{%- set cfg = opts.get('saltmasq', {}) %}
saltmasq_notify:
  runner.http.query:
    - args:
      - url: {{ cfg.get('url', 'http://127.0.0.1:8080/hooks/salt') | yaml_dquote }}
      - method: POST
      - data: {{ {'tag': tag, 'data': data} | json | yaml_dquote }}
      - header_dict:
          Authorization: {{ ('Bearer ' ~ cfg.get('token', '')) | yaml_dquote }}
          Content-Type: application/json
      - status: True
