"""
Who may do what: auth tokens (L{tokens}), the accounts (L{accounts}), the
roles and what each may do (L{roles}), the throttling of failed logins
(L{logins}), the server certificate (L{certificate}) and TLS (L{tls},
L{tlsreceive}).

May import the top-level modules of L{bwscd} only; nothing of the layers
above (policy, config, transfer, protocol, service, tools, commands): what
it needs of the settings is handed to it.
"""
