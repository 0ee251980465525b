"""Gigabit Ethernet link cores: RGMII, MAC, IPv4/UDP, ARP and ICMP echo (docs/architecture.md)."""
