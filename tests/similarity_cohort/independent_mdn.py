"""An MDN written apart from the reference, for the similarity tests: other structure, other idioms."""

import math
import time

import torch

LOG_2PI = math.log(2.0 * math.pi)


def _normal_log_density(value, centre, log_scale):
    standardised = (value - centre) * torch.exp(-log_scale)
    return -0.5 * standardised.pow(2) - log_scale - 0.5 * LOG_2PI


class MixtureDensityNetwork(torch.nn.Module):
    def __init__(self, n_components=5, hidden=64):
        super().__init__()
        self.config = dict(n_components=n_components, hidden=hidden)
        layers = []
        width_in = 1
        for _ in range(2):
            layers += [torch.nn.Linear(width_in, hidden), torch.nn.SiLU()]
            width_in = hidden
        self.trunk = torch.nn.Sequential(*layers)
        self.weights_head = torch.nn.Linear(hidden, n_components)
        self.means_head = torch.nn.Linear(hidden, n_components)
        self.scales_head = torch.nn.Linear(hidden, n_components)

    def forward(self, x):
        features = self.trunk(x)
        weights = torch.log_softmax(self.weights_head(features), dim=1)
        return weights, self.means_head(features), torch.clamp(self.scales_head(features), min=-6.0, max=4.0)


def build_model(config):
    return MixtureDensityNetwork(**config)


def gaussian_nll(mu, log_sigma, y):
    return -_normal_log_density(y, mu, log_sigma).squeeze(1)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    per_component = log_pi + _normal_log_density(y.expand_as(mu), mu, log_sigma)
    return torch.logsumexp(per_component, dim=1)


def em_step(x, log_pi, mu, log_sigma):
    joint = log_pi.unsqueeze(0) + _normal_log_density(x, mu.unsqueeze(0), log_sigma.unsqueeze(0))
    resp = torch.exp(joint - torch.logsumexp(joint, dim=1, keepdim=True))
    counts = resp.sum(dim=0)
    new_mu = (resp * x).sum(dim=0) / counts
    new_var = (resp * (x - new_mu.unsqueeze(0)) ** 2).sum(dim=0) / counts
    return torch.log(counts / x.shape[0]), new_mu, 0.5 * torch.log(new_var)


def fit(x, y, *, seed, max_seconds):
    torch.manual_seed(seed)
    deadline = time.monotonic() + 0.75 * max_seconds
    net = MixtureDensityNetwork()
    optimiser = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-5)
    while time.monotonic() < deadline:
        batch = torch.randperm(len(x))[:256]
        objective = -mixture_log_prob(*net(x[batch]), y[batch]).mean()
        optimiser.zero_grad()
        objective.backward()
        optimiser.step()
    net.eval()
    return net
